/* test_fake_async.c FAKE_CUDA - the stand-in driver's streams, events and pinned memory
 * (fake_cuda.c) behave as the real driver's where the CUDA backend's streaming relies on them,
 * and refuse what the driver refuses:
 *   - cuMemHostAlloc of 0 bytes or unknown flags, cuMemFreeHost of memory it did not give,
 *     cuEventCreate with CU_EVENT_INTERPROCESS but timing on, cuStreamWaitEvent with flags, a
 *     destroyed event, an asynchronous copy past the end of a device allocation: refused
 *   - a copy out of pinned memory is queued: it has not run when the call returns, and runs
 *     when another stream that waits for an event recorded after it needs it
 *   - stream order errors fault the context (CUDA_ERROR_LAUNCH_FAILED at the next
 *     synchronisation): a stream using device memory another stream copied into without an
 *     event wait, the host writing a pinned buffer before the copy out of it ran (each in a
 *     child process: the fault is sticky) */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
enum { OK = 0, INVALID_VALUE = 1, INVALID_HANDLE = 400, LAUNCH_FAILED = 719 };

static CUresult (*Init)(unsigned);
static CUresult (*MemAlloc)(CUdeviceptr *, size_t);
static CUresult (*MemHostAlloc)(void **, size_t, unsigned);
static CUresult (*MemFreeHost)(void *);
static CUresult (*HtoDAsync)(CUdeviceptr, const void *, size_t, void *);
static CUresult (*DtoHAsync)(void *, CUdeviceptr, size_t, void *);
static CUresult (*StreamCreate)(void **, unsigned);
static CUresult (*StreamSynchronize)(void *);
static CUresult (*EventCreate)(void **, unsigned);
static CUresult (*EventDestroy)(void *);
static CUresult (*EventRecord)(void *, void *);
static CUresult (*EventSynchronize)(void *);
static CUresult (*StreamWaitEvent)(void *, void *, unsigned);

static int failures;
static void expect(const char *what, CUresult got, CUresult want) {
    if (got == want) printf("ok   %s: %d\n", what, got);
    else printf("FAIL %s: %d, expected %d\n", what, got, want), failures++;
}

/* Runs f in a child; its exit status. */
static int in_child(int (*f)(void)) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) _exit(f());
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

static void *a, *b; /* two streams */

/* stream b reads device memory stream a copied into, without waiting: 0 when the stand-in
 * faults the context */
static int read_without_wait(void) {
    CUdeviceptr d;
    double *h, back = 0;
    MemAlloc(&d, 64);
    MemHostAlloc((void **)&h, 64, 0);
    h[0] = 1.5;
    HtoDAsync(d, h, 64, a);
    DtoHAsync(&back, d, 8, b);
    return StreamSynchronize(b) == LAUNCH_FAILED ? 0 : 1;
}

/* the host writes a pinned buffer before the copy queued out of it ran */
static int overwrite_pinned(void) {
    CUdeviceptr d;
    double *h;
    MemAlloc(&d, 64);
    MemHostAlloc((void **)&h, 64, 0);
    h[0] = 1.5;
    HtoDAsync(d, h, 64, a);
    h[0] = 2.5; /* no cuEventSynchronize first */
    return StreamSynchronize(a) == LAUNCH_FAILED ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc != 2) return fprintf(stderr, "usage: test_fake_async FAKE_CUDA\n"), 2;
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) return fprintf(stderr, "%s\n", dlerror()), 2;
    struct {
        void *field;
        const char *name;
    } syms[] = {{&Init, "cuInit"},
                {&MemAlloc, "cuMemAlloc_v2"},
                {&MemHostAlloc, "cuMemHostAlloc"},
                {&MemFreeHost, "cuMemFreeHost"},
                {&HtoDAsync, "cuMemcpyHtoDAsync_v2"},
                {&DtoHAsync, "cuMemcpyDtoHAsync_v2"},
                {&StreamCreate, "cuStreamCreate"},
                {&StreamSynchronize, "cuStreamSynchronize"},
                {&EventCreate, "cuEventCreate"},
                {&EventDestroy, "cuEventDestroy_v2"},
                {&EventRecord, "cuEventRecord"},
                {&EventSynchronize, "cuEventSynchronize"},
                {&StreamWaitEvent, "cuStreamWaitEvent"}};
    for (size_t i = 0; i < sizeof syms / sizeof *syms; i++)
        if (!(*(void **)syms[i].field = dlsym(lib, syms[i].name)))
            return fprintf(stderr, "the stand-in lacks %s\n", syms[i].name), 1;
    Init(0);
    void *p = NULL, *e = NULL, *dead = NULL;
    expect("cuMemHostAlloc of 0 bytes", MemHostAlloc(&p, 0, 0), INVALID_VALUE);
    expect("cuMemHostAlloc with unknown flags", MemHostAlloc(&p, 64, 8), INVALID_VALUE);
    char pageable[64];
    expect("cuMemFreeHost of memory not from cuMemHostAlloc", MemFreeHost(pageable), INVALID_VALUE);
    expect("cuEventCreate INTERPROCESS without DISABLE_TIMING", EventCreate(&e, 4), INVALID_VALUE);
    expect("cuStreamCreate", StreamCreate(&a, 0), OK);
    expect("a second stream, another handle", StreamCreate(&b, 0) == OK && a != b, 1);
    expect("cuEventCreate DISABLE_TIMING", EventCreate(&e, 2), OK);
    expect("cuStreamWaitEvent with flags", StreamWaitEvent(b, e, 1), INVALID_VALUE);
    EventCreate(&dead, 2);
    EventDestroy(dead);
    expect("cuEventRecord of a destroyed event", EventRecord(dead, a), INVALID_HANDLE);
    CUdeviceptr d;
    double *h, back[8] = {0};
    MemAlloc(&d, 64);
    MemHostAlloc((void **)&h, 64, 0);
    expect("an asynchronous copy past the end of the allocation", HtoDAsync(d + 8, h, 64, a), INVALID_VALUE);
    /* the queued copy: not run when the call returns, run when b, waiting for it, needs it */
    for (int i = 0; i < 8; i++) h[i] = i + 0.5;
    expect("a copy out of pinned memory", HtoDAsync(d, h, 64, a), OK);
    expect("has not run yet", *(double *)(unsigned long)d != 0.5, 1);
    expect("cuEventRecord", EventRecord(e, a), OK);
    expect("cuStreamWaitEvent", StreamWaitEvent(b, e, 0), OK);
    expect("the waiting stream reads the copy", DtoHAsync(back, d, 64, b), OK);
    expect("cuStreamSynchronize", StreamSynchronize(b), OK);
    expect("what it read is what was copied", back[0] == 0.5 && back[7] == 7.5, 1);
    expect("cuEventSynchronize", EventSynchronize(e), OK);
    expect("cuMemFreeHost", MemFreeHost(h), OK);
    expect("cuMemFreeHost twice", MemFreeHost(h), INVALID_VALUE);
    expect("a read with no wait after another stream's copy faults", in_child(read_without_wait), 0);
    expect("writing a pinned buffer before its copy ran faults", in_child(overwrite_pinned), 0);
    printf("%s\n", failures ? "FAILED" : "all passed");
    return failures != 0;
}
