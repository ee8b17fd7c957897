/*
 * Anchor for hetmem's simulated memory-management figures: the real kernel's cost, per 4 KiB
 * page, of the same operations on this machine.
 *
 *   kernel_mm NPAGES RUNS
 *
 * For each operation it maps NPAGES of private anonymous memory (THP disabled on the range, so
 * every page takes its own fault, as in the simulation), times the operation with
 * clock_gettime(CLOCK_MONOTONIC) and keeps the best of RUNS runs. It prints one JSON object of
 * nanoseconds per page:
 *
 *   write_fault   first write to each page (do_anonymous_page: allocate, zero, map)
 *   read_fault    first read of each page (maps the shared zero page)
 *   mprotect      mprotect(PROT_READ) over the populated range
 *   madvise       madvise(MADV_DONTNEED) over the populated range
 *   munmap        munmap of the populated range
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static char *map_region(size_t npages)
{
	char *p = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
#ifdef MADV_NOHUGEPAGE
	madvise(p, npages * PAGE, MADV_NOHUGEPAGE);
#endif
	return p;
}

static void populate(char *p, size_t npages)
{
	for (size_t i = 0; i < npages; i++)
		p[i * PAGE] = 1;
}

enum op { WRITE_FAULT, READ_FAULT, MPROTECT, MADVISE, MUNMAP, NOPS };
static const char *const names[NOPS] = { "write_fault", "read_fault", "mprotect", "madvise", "munmap" };

static volatile unsigned long sink;

static double run_once(enum op op, size_t npages)
{
	char *p = map_region(npages);
	double t0, t1;
	unsigned long sum = 0;

	if (op != WRITE_FAULT && op != READ_FAULT)
		populate(p, npages);
	t0 = now_ns();
	switch (op) {
	case WRITE_FAULT:
		populate(p, npages);
		break;
	case READ_FAULT:
		for (size_t i = 0; i < npages; i++)
			sum += ((volatile char *)p)[i * PAGE];
		sink = sum;
		break;
	case MPROTECT:
		if (mprotect(p, npages * PAGE, PROT_READ))
			perror("mprotect");
		break;
	case MADVISE:
		if (madvise(p, npages * PAGE, MADV_DONTNEED))
			perror("madvise");
		break;
	case MUNMAP:
		if (munmap(p, npages * PAGE))
			perror("munmap");
		break;
	default:
		break;
	}
	t1 = now_ns();
	if (op != MUNMAP)
		munmap(p, npages * PAGE);
	return (t1 - t0) / (double)npages;
}

int main(int argc, char **argv)
{
	size_t npages = argc > 1 ? strtoul(argv[1], NULL, 0) : 65536;
	int runs = argc > 2 ? atoi(argv[2]) : 7;

	if (npages == 0 || runs <= 0) {
		fprintf(stderr, "usage: %s NPAGES RUNS\n", argv[0]);
		return 2;
	}
	printf("{\"npages\": %zu, \"runs\": %d", npages, runs);
	for (int op = 0; op < NOPS; op++) {
		double best = 1e300;

		for (int r = 0; r < runs; r++) {
			double t = run_once((enum op)op, npages);

			if (t < best)
				best = t;
		}
		printf(", \"%s\": %.3f", names[op], best);
	}
	printf("}\n");
	return 0;
}
