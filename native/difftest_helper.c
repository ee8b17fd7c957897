/*
 * The live-kernel side of `hetmem difftest`. Reads one program from stdin, one op a line, runs it
 * in a fresh child process at the fixed addresses the program names (inside a window checked to
 * be free with MAP_FIXED_NOREPLACE) and prints one result line per op:
 *
 *   mmap ADDR LEN PROT SHARED       -> R ret-or--errno
 *   munmap ADDR LEN / mprotect ADDR LEN PROT / madvise ADDR LEN ADVICE
 *   mremap ADDR OLD NEW FLAGS NEWADDR
 *   write ADDR LEN BYTE             -> R bytes-or--EFAULT     (stores until the first fault)
 *   read ADDR LEN                   -> R bytes-or--EFAULT HASH (FNV-1a of the bytes read)
 *   pagemap ADDR NPAGES             -> R 0 FLAGS              (per page: p present, s swap, d soft-dirty, - none)
 *   clear_refs                      -> R 0                    (echo 4 > /proc/self/clear_refs)
 *   window ADDR LEN                 -> R 0 or -errno          (the window is free)
 *
 * Built by hetmem with the system C compiler on first use.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static sigjmp_buf fault_jmp;

static void on_fault(int sig) {
	(void)sig;
	siglongjmp(fault_jmp, 1);
}

static long ret_of(long r) { return r == -1 ? -errno : r; }

/* Stores `byte` into [addr, addr+len) until a fault; the bytes before it stay stored. */
static long do_write(uintptr_t addr, uint64_t len, int byte) {
	volatile uint64_t done = 0;
	if (sigsetjmp(fault_jmp, 1) != 0) return -EFAULT;
	for (; done < len; done++) ((volatile unsigned char *)addr)[done] = (unsigned char)byte;
	return (long)done;
}

static volatile uint32_t hash;

static long do_read(uintptr_t addr, uint64_t len) {
	volatile uint64_t done = 0;
	hash = 2166136261u;
	if (sigsetjmp(fault_jmp, 1) != 0) return -EFAULT;
	for (; done < len; done++) hash = (hash ^ ((volatile unsigned char *)addr)[done]) * 16777619u;
	return (long)done;
}

static void do_pagemap(uintptr_t addr, uint64_t npages) {
	int fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0) {
		printf("R %d\n", -errno);
		return;
	}
	printf("R 0 ");
	for (uint64_t i = 0; i < npages; i++) {
		uint64_t e = 0;
		off_t off = (off_t)((addr / 4096 + i) * 8);
		if (pread(fd, &e, 8, off) != 8) e = 0;
		char c[4] = {0};
		int n = 0;
		if (e >> 63 & 1) c[n++] = 'p';
		if (e >> 62 & 1) c[n++] = 's';
		if (e >> 55 & 1) c[n++] = 'd';
		if (n == 0) c[n++] = '-';
		printf("%s%s", i ? "," : "", c);
	}
	printf("\n");
	close(fd);
}

static int run_program(void) {
	char line[512];
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fault;
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		char op[32];
		unsigned long long a = 0, b = 0, c = 0, d = 0, e = 0;
		if (sscanf(line, "%31s %llu %llu %llu %llu %llu", op, &a, &b, &c, &d, &e) < 1) continue;
		if (!strcmp(op, "window")) {
			void *p = mmap((void *)a, b, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
			if (p == MAP_FAILED) printf("R %d\n", -errno);
			else if ((uintptr_t)p != a) printf("R %d\n", -EEXIST);
			else printf("R %ld\n", ret_of(munmap(p, b)));
		} else if (!strcmp(op, "mmap")) {
			int flags = MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | (d ? MAP_SHARED : MAP_PRIVATE);
			void *p = mmap((void *)a, b, (int)c, flags, -1, 0);
			printf("R %ld\n", p == MAP_FAILED ? (long)-errno : (long)(uintptr_t)p);
		} else if (!strcmp(op, "munmap")) {
			printf("R %ld\n", ret_of(munmap((void *)a, b)));
		} else if (!strcmp(op, "mprotect")) {
			printf("R %ld\n", ret_of(mprotect((void *)a, b, (int)c)));
		} else if (!strcmp(op, "madvise")) {
			printf("R %ld\n", ret_of(madvise((void *)a, b, (int)c)));
		} else if (!strcmp(op, "mremap")) {
			void *p = mremap((void *)a, b, c, (int)d, (void *)e);
			printf("R %ld\n", p == MAP_FAILED ? (long)-errno : (long)(uintptr_t)p);
		} else if (!strcmp(op, "write")) {
			printf("R %ld\n", do_write(a, b, (int)c));
		} else if (!strcmp(op, "read")) {
			long r = do_read(a, b);
			printf("R %ld %u\n", r, (unsigned)hash);
		} else if (!strcmp(op, "pagemap")) {
			do_pagemap(a, b);
		} else if (!strcmp(op, "clear_refs")) {
			int fd = open("/proc/self/clear_refs", O_WRONLY);
			long r = fd < 0 ? -errno : (write(fd, "4", 1) == 1 ? 0 : -errno);
			if (fd >= 0) close(fd);
			printf("R %ld\n", r);
		} else {
			printf("R %d\n", -ENOSYS);
		}
	}
	return 0;
}

int main(void) {
	/* The program runs in a child, so its mappings start from a clean, single-threaded process. */
	pid_t pid = fork();
	if (pid < 0) return 3;
	if (pid == 0) _exit(run_program());
	int status = 0;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 3;
}
