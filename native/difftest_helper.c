/*
 * The live-kernel side of `hetmem difftest`. Reads one program from stdin, one op a line, runs it
 * in a fresh child process at the fixed addresses the program names (inside a window checked to
 * be free with MAP_FIXED_NOREPLACE) and prints one result line per op:
 *
 *   mmap ADDR LEN PROT SHARED FLAGS -> R ret-or--errno        (SHARED 1: MAP_SHARED, 2: MAP_DROPPABLE;
 *                                                               FLAGS: more mmap flags; with MAP_FIXED,
 *                                                               MAP_FIXED_NOREPLACE is left out)
 *   munmap ADDR LEN / mprotect ADDR LEN PROT / madvise ADDR LEN ADVICE
 *   mremap ADDR OLD NEW FLAGS NEWADDR
 *   write ADDR LEN BYTE             -> R bytes-or--EFAULT     (stores until the first fault)
 *   read ADDR LEN                   -> R bytes-or--EFAULT HASH (FNV-1a of the bytes read)
 *   mincore ADDR LEN                -> R 0 BITS or -errno     (a 0 or 1 a page)
 *   pagemap ADDR NPAGES             -> R 0 FLAGS              (per page: p present, s swap, d soft-dirty,
 *                                                               x exclusively mapped, f file or shared
 *                                                               anonymous, - none)
 *   clear_refs                      -> R 0                    (echo 4 > /proc/self/clear_refs)
 *   smaps ADDR LEN                  -> R 0 VMA|VMA...         (/proc/self/smaps of the VMAs overlapping
 *                                                               the range: START-END then the kB of each
 *                                                               field SMAPS_FIELDS names, `:` between,
 *                                                               then VmFlags' names but sd, `,` between)
 *   maps ADDR LEN                   -> R 0 LINE|LINE...       (/proc/self/maps entries overlapping the
 *                                                               range: START-END PERMS OFFSET [PATH])
 *   memfd SLOT FLAGS                -> R 0 or -errno          (memfd_create(), kept in file slot SLOT)
 *   close SLOT / ftruncate SLOT LEN / fallocate SLOT MODE OFF LEN
 *   fcntl SLOT CMD ARG              -> R ret-or--errno        (F_ADD_SEALS, F_GET_SEALS)
 *   fchmod SLOT MODE                -> R 0 or -errno
 *   open SLOT FROM FLAGS            -> R 0 or -errno          (open() of /proc/self/fd/N, N the fd
 *                                                               of slot FROM, kept in slot SLOT; a
 *                                                               SLOT past the slots closes it again)
 *   mmapf ADDR LEN PROT SHARED SLOT OFF FLAGS -> R ret-or--errno (a mapping of the slot's file)
 *   pwrite SLOT OFF LEN BYTE        -> R bytes-or--errno
 *   pread SLOT OFF LEN              -> R bytes-or--errno HASH
 *   fwrite SLOT LEN BYTE            -> R bytes-or--errno      (write() at the file position)
 *   fread SLOT LEN                  -> R bytes-or--errno HASH (read() at the file position)
 *   lseek SLOT OFF WHENCE           -> R position-or--errno   (OFF is signed)
 *   window ADDR LEN                 -> R 0 or -errno          (the window is free)
 *   fork                            -> R 0 or -errno          (a second process; once)
 *   exitchild                       -> R 0 or -errno          (the child exits and is reaped)
 *   mlock ADDR LEN FLAGS            -> R 0 or -errno          (mlock2(); FLAGS 0 is mlock())
 *   munlock ADDR LEN / mlockall FLAGS / munlockall
 *   mseal ADDR LEN FLAGS            -> R 0 or -errno
 *   pmadvise WHO ADVICE N A1 L1 A2 L2 -> R bytes or -errno   (process_madvise() of N (at most 2)
 *                                                               segments on this process, WHO 0, or
 *                                                               the one fork made, WHO 1)
 *   status                          -> R 0 LCK:DATA:SIZE:STK[:PTE] (VmLck, VmData, VmSize, VmStk and,
 *                                                               not in the child, VmPTE of
 *                                                               /proc/self/status in kB, all but the
 *                                                               first less what the process had before
 *                                                               the program ran)
 *   rlimit RES CUR MAX INF          -> R 0 or -errno          (setrlimit() of RLIMIT_AS, RLIMIT_DATA,
 *                                                               RLIMIT_STACK or RLIMIT_MEMLOCK, RES 0 to
 *                                                               3: CUR and MAX
 *                                                               bytes above what the process had before
 *                                                               the program ran (VmSize, VmData; a
 *                                                               RLIMIT_DATA CUR of 0 stays 0; RLIMIT_STACK
 *                                                               and RLIMIT_MEMLOCK as given); INF bit 0: CUR is
 *                                                               RLIM_INFINITY, bit 1: MAX is)
 *   c OP ...                        -> what OP prints, run in the process fork made
 *
 * Built by hetmem with the system C compiler on first use.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
/* MAP_DROPPABLE, a mapping type of its own (0x08), by a name older headers do not clash with. */
#define MAP_DROPPABLE_TYPE 0x08
#ifndef SYS_mseal
#define SYS_mseal 462
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

/* Where the process running the ops prints its results: stdout, or the pipe back from a child. */
static FILE *out;

/* The program's files. A slot not opened, or closed, holds a number no file has (EBADF). */
#define SLOTS 2
#define NO_FILE 1000
static int slots[SLOTS] = {NO_FILE, NO_FILE};

static int slot_fd(unsigned long long s) { return s < SLOTS ? slots[s] : NO_FILE; }

static long do_pwrite(int fd, uint64_t off, uint64_t len, int byte) {
	char *buf = malloc(len ? len : 1);
	if (buf == NULL) return -ENOMEM;
	memset(buf, byte, len);
	long r = ret_of(pwrite(fd, buf, len, (off_t)off));
	free(buf);
	return r;
}

static long do_pread(int fd, uint64_t off, uint64_t len) {
	unsigned char *buf = malloc(len ? len : 1);
	if (buf == NULL) return -ENOMEM;
	long r = ret_of(pread(fd, buf, len, (off_t)off));
	hash = 2166136261u;
	for (long i = 0; i < r; i++) hash = (hash ^ buf[i]) * 16777619u;
	free(buf);
	return r;
}

static long do_fwrite(int fd, uint64_t len, int byte) {
	char *buf = malloc(len ? len : 1);
	if (buf == NULL) return -ENOMEM;
	memset(buf, byte, len);
	long r = ret_of(write(fd, buf, len));
	free(buf);
	return r;
}

static long do_fread(int fd, uint64_t len) {
	unsigned char *buf = malloc(len ? len : 1);
	if (buf == NULL) return -ENOMEM;
	long r = ret_of(read(fd, buf, len));
	hash = 2166136261u;
	for (long i = 0; i < r; i++) hash = (hash ^ buf[i]) * 16777619u;
	free(buf);
	return r;
}

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
		fprintf(out, "R %d\n", -errno);
		return;
	}
	fprintf(out, "R 0 ");
	for (uint64_t i = 0; i < npages; i++) {
		uint64_t e = 0;
		off_t off = (off_t)((addr / 4096 + i) * 8);
		if (pread(fd, &e, 8, off) != 8) e = 0;
		char c[6] = {0};
		int n = 0;
		if (e >> 63 & 1) c[n++] = 'p';
		if (e >> 62 & 1) c[n++] = 's';
		if (e >> 55 & 1) c[n++] = 'd';
		if (e >> 56 & 1) c[n++] = 'x';
		if (e >> 61 & 1) c[n++] = 'f';
		if (n == 0) c[n++] = '-';
		fprintf(out, "%s%s", i ? "," : "", c);
	}
	fprintf(out, "\n");
	close(fd);
}

/* The /proc/self/maps entries that overlap [addr, addr+len), without the device and inode columns. */
static void do_maps(uintptr_t addr, uint64_t len) {
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	int n = 0;
	if (f == NULL) {
		fprintf(out, "R %d\n", -errno);
		return;
	}
	fprintf(out, "R 0");
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long start, end;
		unsigned long long off;
		char perms[8];
		int name = 0;
		if (sscanf(line, "%lx-%lx %7s %llx %*s %*s %n", &start, &end, perms, &off, &name) < 4) continue;
		if (start >= addr + len || end <= addr) continue;
		line[strcspn(line, "\n")] = 0;
		fprintf(out, "%c%08lx-%08lx %s %08llx", n++ ? '|' : ' ', start, end, perms, off);
		if (name > 0 && line[name] != 0) fprintf(out, " %s", line + name);
	}
	fprintf(out, "\n");
	fclose(f);
}

/* mincore() of [addr, addr+len): the residency of each page, a 0 or 1 a page. */
static void do_mincore(uintptr_t addr, uint64_t len) {
	static unsigned char vec[1 << 16];
	uint64_t pages = (len >> 12) + ((len & 4095) != 0);
	/* Programs ask for a few pages, or for more than the user address space (-ENOMEM first). */
	if (len <= (1ULL << 47) && pages > sizeof(vec)) {
		fprintf(out, "R %d\n", -E2BIG);
		return;
	}
	long r = ret_of(mincore((void *)addr, len, vec));
	fprintf(out, "R %ld", r);
	if (r == 0 && pages > 0) {
		fputc(' ', out);
		for (uint64_t i = 0; i < pages; i++) fputc('0' + (vec[i] & 1), out);
	}
	fputc('\n', out);
}

/* VmLck, VmData, VmSize, VmStk and VmPTE of /proc/self/status, in kB; -errno, or 0. */
static int read_status(long *lck, long *data, long *size, long *stk, long *pte) {
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	*lck = *data = *size = *stk = *pte = -1;
	if (f == NULL) return -errno;
	while (fgets(line, sizeof(line), f) != NULL) {
		sscanf(line, "VmLck: %ld kB", lck);
		sscanf(line, "VmData: %ld kB", data);
		sscanf(line, "VmSize: %ld kB", size);
		sscanf(line, "VmStk: %ld kB", stk);
		sscanf(line, "VmPTE: %ld kB", pte);
	}
	fclose(f);
	return *lck < 0 || *data < 0 || *size < 0 || *stk < 0 || *pte < 0 ? -ENOENT : 0;
}

/* What the process had before the program ran (run_program()): the program's counts are above it. */
static long base_data, base_size, base_stk, base_pte;
/*
 * Set in the child fork made: its VmPTE also counts the tables fork copied for the helper's own
 * mappings and those its code and libc's fault in as it runs (which vary from run to run), none
 * of which the model has, so it is left out there.
 */
static int in_child;

static void do_status(void) {
	long lck, data, size, stk, pte;
	int r = read_status(&lck, &data, &size, &stk, &pte);
	if (r < 0) fprintf(out, "R %d\n", r);
	else if (in_child) fprintf(out, "R 0 %ld:%ld:%ld:%ld\n", lck, data - base_data, size - base_size, stk - base_stk);
	else
		fprintf(out, "R 0 %ld:%ld:%ld:%ld:%ld\n", lck, data - base_data, size - base_size, stk - base_stk,
			pte - base_pte);
}

/* setrlimit() with the limits relative to what the process had before the program ran. */
static long do_rlimit(unsigned long long res, unsigned long long cur, unsigned long long max, unsigned long long inf) {
	static const int which[] = { RLIMIT_AS, RLIMIT_DATA, RLIMIT_STACK, RLIMIT_MEMLOCK };
	if (res > 3) return -EINVAL;
	unsigned long long base = res == 0 ? (unsigned long long)base_size << 10 : res == 1 ? (unsigned long long)base_data << 10 : 0;
	struct rlimit rl;
	rl.rlim_cur = inf & 1 ? RLIM_INFINITY : res == 1 && cur == 0 ? 0 : base + cur;
	rl.rlim_max = inf & 2 ? RLIM_INFINITY : base + max;
	return ret_of(setrlimit(which[res], &rl));
}

/* A program's extra mmap flags, with MAP_FIXED_NOREPLACE unless they ask for MAP_FIXED. */
static int fixed_flags(int extra) { return extra & MAP_FIXED ? extra : extra | MAP_FIXED_NOREPLACE; }

/* The smaps fields difftest compares, in this order. */
static const char *const SMAPS_FIELDS[] = {
	"Rss", "Pss", "Pss_Dirty", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty",
	"Referenced", "Anonymous", "LazyFree", "AnonHugePages", "ShmemPmdMapped", "Shared_Hugetlb",
	"Private_Hugetlb", "Swap", "SwapPss", "Locked",
};
#define NFIELDS (sizeof(SMAPS_FIELDS) / sizeof(SMAPS_FIELDS[0]))

static void print_smaps_vma(int *n, unsigned long start, unsigned long end, const unsigned long long *kb,
			    const char *vmflags) {
	fprintf(out, "%c%08lx-%08lx ", (*n)++ ? '|' : ' ', start, end);
	for (size_t i = 0; i < NFIELDS; i++) fprintf(out, "%s%llu", i ? ":" : "", kb[i]);
	fprintf(out, " %s", vmflags[0] ? vmflags : "-");
}

/* VmFlags' names, comma-separated, without `sd` (the model leaves soft-dirty to pagemap). */
static void parse_vmflags(const char *line, char *out_flags, size_t size) {
	const char *p = line + strlen("VmFlags:");
	size_t n = 0;
	out_flags[0] = 0;
	while (*p) {
		while (*p == ' ') p++;
		if (!isalpha((unsigned char)p[0]) || !isalpha((unsigned char)p[1])) break;
		if (!(p[0] == 's' && p[1] == 'd') && n + 3 < size) {
			if (n) out_flags[n++] = ',';
			out_flags[n++] = p[0];
			out_flags[n++] = p[1];
			out_flags[n] = 0;
		}
		p += 2;
	}
}

/* The smaps entries of the VMAs that overlap [addr, addr+len). */
static void do_smaps(uintptr_t addr, uint64_t len) {
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[4096];
	unsigned long start = 0, end = 0;
	unsigned long long kb[NFIELDS];
	char vmflags[256] = "";
	int in = 0, n = 0;
	if (f == NULL) {
		fprintf(out, "R %d\n", -errno);
		return;
	}
	fprintf(out, "R 0");
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long s, e;
		char key[64];
		unsigned long long v;
		/* A VMA's header starts with its address in lower-case hex, its fields with a capital. */
		if (!isupper((unsigned char)line[0]) && sscanf(line, "%lx-%lx ", &s, &e) == 2) {
			if (in) print_smaps_vma(&n, start, end, kb, vmflags);
			in = s < addr + len && e > addr;
			start = s;
			end = e;
			memset(kb, 0, sizeof(kb));
			vmflags[0] = 0;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8)) {
			parse_vmflags(line, vmflags, sizeof(vmflags));
			continue;
		}
		if (!in || sscanf(line, "%63[^:]: %llu kB", key, &v) != 2) continue;
		for (size_t i = 0; i < NFIELDS; i++)
			if (!strcmp(key, SMAPS_FIELDS[i])) kb[i] = v;
	}
	if (in) print_smaps_vma(&n, start, end, kb, vmflags);
	fprintf(out, "\n");
	fclose(f);
}

/* The process fork made: the parent writes its ops down one pipe and reads its results back. */
static FILE *child_in, *child_out;
static pid_t child_pid;

/* process_madvise() on this process (WHO 0) or the forked one (WHO 1), of up to two segments. */
static long do_process_madvise(uint64_t who, int advice, uint64_t n, uint64_t a1, uint64_t l1, uint64_t a2,
			       uint64_t l2) {
	struct iovec v[2] = { { (void *)a1, l1 }, { (void *)a2, l2 } };
	if (who && child_pid <= 0) return -ESRCH;
	int pidfd = (int)syscall(SYS_pidfd_open, who ? child_pid : getpid(), 0);
	if (pidfd < 0) return -errno;
	long r = ret_of(syscall(SYS_process_madvise, pidfd, v, n > 2 ? 2 : n, advice, 0));
	close(pidfd);
	return r;
}

static void run_ops(FILE *in);

static long do_fork(void) {
	int down[2], up[2];
	if (child_pid > 0) return -EBUSY;
	if (pipe(down) < 0) return -errno;
	if (pipe(up) < 0) return -errno;
	fflush(out);
	pid_t pid = fork();
	if (pid < 0) return -errno;
	if (pid == 0) {
		in_child = 1;
		close(down[1]);
		close(up[0]);
		FILE *in = fdopen(down[0], "r");
		out = fdopen(up[1], "w");
		setvbuf(out, NULL, _IOLBF, 0);
		run_ops(in);
		_exit(0);
	}
	close(down[0]);
	close(up[1]);
	child_pid = pid;
	child_in = fdopen(down[1], "w");
	setvbuf(child_in, NULL, _IOLBF, 0);
	child_out = fdopen(up[0], "r");
	return 0;
}

/* The child reads end of file and exits; the parent reaps it. Its ops answer -ESRCH from then on. */
static long exit_child(void) {
	if (child_pid <= 0) return -ESRCH;
	fclose(child_in);
	if (waitpid(child_pid, NULL, 0) < 0) return -errno;
	fclose(child_out);
	child_pid = -1;
	return 0;
}

/* Hands one op to the child and prints the line it answers with. */
static void child_op(const char *line) {
	char reply[8192];
	if (child_pid <= 0) {
		fprintf(out, "R %d\n", -ESRCH);
		return;
	}
	fputs(line, child_in);
	if (fgets(reply, sizeof(reply), child_out) == NULL) fprintf(out, "R %d\n", -EPIPE);
	else fputs(reply, out);
}

static void run_ops(FILE *in) {
	char line[512];
	while (fgets(line, sizeof(line), in) != NULL) {
		char op[32];
		if (line[0] == 'c' && line[1] == ' ') {
			child_op(line + 2);
			continue;
		}
		unsigned long long a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0;
		if (sscanf(line, "%31s %llu %llu %llu %llu %llu %llu %llu", op, &a, &b, &c, &d, &e, &f, &g) < 1) continue;
		if (!strcmp(op, "window")) {
			void *p = mmap((void *)a, b, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
			if (p == MAP_FAILED) fprintf(out, "R %d\n", -errno);
			else if ((uintptr_t)p != a) fprintf(out, "R %d\n", -EEXIST);
			else fprintf(out, "R %ld\n", ret_of(munmap(p, b)));
		} else if (!strcmp(op, "mmap")) {
			int flags = MAP_ANONYMOUS | fixed_flags((int)e) | (d == 2 ? MAP_DROPPABLE_TYPE : d ? MAP_SHARED : MAP_PRIVATE);
			void *p = mmap((void *)a, b, (int)c, flags, -1, 0);
			fprintf(out, "R %ld\n", p == MAP_FAILED ? (long)-errno : (long)(uintptr_t)p);
		} else if (!strcmp(op, "munmap")) {
			fprintf(out, "R %ld\n", ret_of(munmap((void *)a, b)));
		} else if (!strcmp(op, "mprotect")) {
			fprintf(out, "R %ld\n", ret_of(mprotect((void *)a, b, (int)c)));
		} else if (!strcmp(op, "madvise")) {
			fprintf(out, "R %ld\n", ret_of(madvise((void *)a, b, (int)c)));
		} else if (!strcmp(op, "mremap")) {
			void *p = mremap((void *)a, b, c, (int)d, (void *)e);
			fprintf(out, "R %ld\n", p == MAP_FAILED ? (long)-errno : (long)(uintptr_t)p);
		} else if (!strcmp(op, "write")) {
			fprintf(out, "R %ld\n", do_write(a, b, (int)c));
		} else if (!strcmp(op, "read")) {
			long r = do_read(a, b);
			fprintf(out, "R %ld %u\n", r, (unsigned)hash);
		} else if (!strcmp(op, "pagemap")) {
			do_pagemap(a, b);
		} else if (!strcmp(op, "maps")) {
			do_maps(a, b);
		} else if (!strcmp(op, "smaps")) {
			do_smaps(a, b);
		} else if (!strcmp(op, "clear_refs")) {
			int fd = open("/proc/self/clear_refs", O_WRONLY);
			long r = fd < 0 ? -errno : (write(fd, "4", 1) == 1 ? 0 : -errno);
			if (fd >= 0) close(fd);
			fprintf(out, "R %ld\n", r);
		} else if (!strcmp(op, "memfd")) {
			int fd = memfd_create("difftest", (unsigned)b);
			if (fd >= 0 && a < SLOTS) slots[a] = fd;
			fprintf(out, "R %d\n", fd < 0 ? -errno : 0);
		} else if (!strcmp(op, "fcntl")) {
			fprintf(out, "R %ld\n", ret_of(fcntl(slot_fd(a), (int)b, (unsigned long)c)));
		} else if (!strcmp(op, "fchmod")) {
			fprintf(out, "R %ld\n", ret_of(fchmod(slot_fd(a), (mode_t)b)));
		} else if (!strcmp(op, "open")) {
			char path[64];
			snprintf(path, sizeof(path), "/proc/self/fd/%d", slot_fd(b));
			int fd = open(path, (int)c, 0600);
			if (fd >= 0 && a < SLOTS)
				slots[a] = fd;
			else if (fd >= 0)
				close(fd);
			fprintf(out, "R %d\n", fd < 0 ? -errno : 0);
		} else if (!strcmp(op, "close")) {
			long r = ret_of(close(slot_fd(a)));
			if (a < SLOTS) slots[a] = NO_FILE;
			fprintf(out, "R %ld\n", r);
		} else if (!strcmp(op, "ftruncate")) {
			fprintf(out, "R %ld\n", ret_of(ftruncate(slot_fd(a), (off_t)b)));
		} else if (!strcmp(op, "fallocate")) {
			/* Programs allocate little: refuse rather than fill the machine's memory. */
			if (b <= FALLOC_FL_KEEP_SIZE && d > (1ULL << 26))
				fprintf(out, "R %d\n", -E2BIG);
			else
				fprintf(out, "R %ld\n", ret_of(fallocate(slot_fd(a), (int)b, (off_t)c, (off_t)d)));
		} else if (!strcmp(op, "mmapf")) {
			int flags = fixed_flags((int)g) | (d ? MAP_SHARED : MAP_PRIVATE);
			void *p = mmap((void *)a, b, (int)c, flags, slot_fd(e), (off_t)f);
			fprintf(out, "R %ld\n", p == MAP_FAILED ? (long)-errno : (long)(uintptr_t)p);
		} else if (!strcmp(op, "pwrite")) {
			fprintf(out, "R %ld\n", do_pwrite(slot_fd(a), b, c, (int)d));
		} else if (!strcmp(op, "pread")) {
			long r = do_pread(slot_fd(a), b, c);
			fprintf(out, "R %ld %u\n", r, (unsigned)hash);
		} else if (!strcmp(op, "fwrite")) {
			fprintf(out, "R %ld\n", do_fwrite(slot_fd(a), b, (int)c));
		} else if (!strcmp(op, "fread")) {
			long r = do_fread(slot_fd(a), b);
			fprintf(out, "R %ld %u\n", r, (unsigned)hash);
		} else if (!strcmp(op, "lseek")) {
			off_t r = lseek(slot_fd(a), (off_t)b, (int)c);
			fprintf(out, "R %ld\n", r < 0 ? (long)-errno : (long)r);
		} else if (!strcmp(op, "mincore")) {
			do_mincore(a, b);
		} else if (!strcmp(op, "status")) {
			do_status();
		} else if (!strcmp(op, "mlock")) {
			fprintf(out, "R %ld\n", ret_of(syscall(SYS_mlock2, (void *)a, (size_t)b, (int)c)));
		} else if (!strcmp(op, "munlock")) {
			fprintf(out, "R %ld\n", ret_of(munlock((void *)a, b)));
		} else if (!strcmp(op, "rlimit")) {
			fprintf(out, "R %ld\n", do_rlimit(a, b, c, d));
		} else if (!strcmp(op, "mlockall")) {
			fprintf(out, "R %ld\n", ret_of(mlockall((int)a)));
		} else if (!strcmp(op, "munlockall")) {
			fprintf(out, "R %ld\n", ret_of(munlockall()));
		} else if (!strcmp(op, "pmadvise")) {
			fprintf(out, "R %ld\n", do_process_madvise(a, (int)b, c, d, e, f, g));
		} else if (!strcmp(op, "mseal")) {
			fprintf(out, "R %ld\n", ret_of(syscall(SYS_mseal, a, b, c)));
		} else if (!strcmp(op, "exitchild")) {
			fprintf(out, "R %ld\n", exit_child());
		} else if (!strcmp(op, "fork")) {
			fprintf(out, "R %ld\n", do_fork());
		} else {
			fprintf(out, "R %d\n", -ENOSYS);
		}
	}
}

/*
 * The program runs as an ordinary user would for mlock(): no CAP_IPC_LOCK, which a helper run as
 * root would otherwise have, and an RLIMIT_MEMLOCK of 64 KiB (16 pages, which programs' small
 * mappings reach; hetmem's model of the program gets the same limit).
 */
static void memlock_as_user(void) {
	struct rlimit rl = { 64UL << 10, 64UL << 10 };
	setrlimit(RLIMIT_MEMLOCK, &rl);
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) != 0) return;
	data[CAP_IPC_LOCK / 32].effective &= ~(1U << (CAP_IPC_LOCK % 32));
	data[CAP_SYS_NICE / 32].effective &= ~(1U << (CAP_SYS_NICE % 32));
	/* Nor may it raise a hard resource limit (setrlimit() is -EPERM, as for the model's processes). */
	data[CAP_SYS_RESOURCE / 32].effective &= ~(1U << (CAP_SYS_RESOURCE % 32));
	syscall(SYS_capset, &hdr, data);
}

/*
 * The program and the process it forks run on one CPU: the kernel's per-CPU LRU batches (a new
 * folio waits in one before it is on the LRU) are then the ones the program's own calls drain.
 * Across CPUs, MADV_PAGEOUT in a forked child would pass over a folio still in the other CPU's
 * batch, as it happened to be scheduled.
 */
static void one_cpu(void) {
	cpu_set_t set;
	int cpu = sched_getcpu();
	CPU_ZERO(&set);
	CPU_SET(cpu < 0 ? 0 : cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* Touches 512 KiB of stack below the caller's frame, so that the stack VMA reaches that far. */
static __attribute__((noinline)) void grow_stack(void) {
	volatile char buf[512 << 10];
	buf[0] = 0;
	buf[sizeof(buf) - 1] = 0;
}

static int run_program(void) {
	one_cpu();
	memlock_as_user();
	/*
	 * The helper's own allocations come from a heap grown once here and never given back, so
	 * that after mlockall(MCL_FUTURE) no growth of it is locked and counted in locked_vm, which
	 * the model, holding only the program's mappings, would not count.
	 */
	mallopt(M_MMAP_THRESHOLD, 1 << 30);
	mallopt(M_TRIM_THRESHOLD, 1 << 30);
	/* Touched, so that the page tables under it are there before the baseline is read (VmPTE). */
	char *heap = malloc(1 << 20);
	if (heap == NULL) return 3;
	memset(heap, 0, 1 << 20);
	free(heap);
	/*
	 * Its stack, likewise, grows once here as far as the program's calls will need: a growth later
	 * would change VmSize and VmStk under the program's counts (and fail under its RLIMIT_AS).
	 */
	grow_stack();
	long lck;
	if (read_status(&lck, &base_data, &base_size, &base_stk, &base_pte) < 0) return 3;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fault;
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	/* A child that died answers -EPIPE rather than take this process with it. */
	signal(SIGPIPE, SIG_IGN);
	out = stdout;
	setvbuf(stdout, NULL, _IOLBF, 0);
	run_ops(stdin);
	if (child_pid > 0) {
		/* End of the program: the child reads end of file and exits. */
		fclose(child_in);
		waitpid(child_pid, NULL, 0);
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
