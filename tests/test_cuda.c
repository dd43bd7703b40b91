/* test_cuda.c - checks of the CUDA emitter that need no GPU.
 *
 *   test_cuda --plan  DIR...   every spec in the folders: the plan against the .cu
 *   test_cuda --nvrtc DIR...   every spec in the folders compiles with NVRTC
 *
 * --plan, for each .dino file in the folders, in f32 and f64: generating twice gives the same text; each plan
 * entry is named dino_<program>_k<i> in launch order and is defined exactly once in the .cu
 * (as an extern "C" __launch_bounds__(256) kernel, with the program's parameter list), and the
 * .cu defines no other program kernels; for batches of 1, 7, 64 and 4096 rows every grid is
 * within CUDA's limits and covers the batch; block sizes, shared memory and workspaces are
 * sane; the plan's model facts match the model.
 *
 * --nvrtc, for each spec, f32 and f64, sm_80 and sm_90, --fuse auto and (where it gives another
 * source) tiles, and f32 with fast math (train { math fast }) with --fuse auto: NVRTC compiles the .cu to a CUBIN (to PTX for compute_XX when this NVRTC can't
 * make a CUBIN for that GPU), without warnings, and every kernel of the plan is in the result.
 * For a CUBIN, ptxas's resource report (--ptxas-options=-v) must show no spills, every kernel's
 * static shared memory plus its launch's dynamic shared memory within 48 KiB, and no kernel
 * above the registers its __launch_bounds__ allow (issue 19). Specs under a planned/ folder
 * that do not check yet are notes, not failures. Prints each compile's time. When NVRTC can't be
 * loaded, prints SKIP and why, and exits 77 (ctest: skipped). Compiles run in parallel, one
 * process per CPU (at most 4). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "emit.h"
#include "frontend.h"
#include "harness.h"
#include "nvrtc.h"

enum { SKIP = 77, MAX_SPECS = 256 };

static int failures;

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The .dino files of the folders, sorted within each folder. */
static int list_specs(int argc, char **argv, char **specs) {
    int n = 0;
    for (int i = 0; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (!d) {
            printf("note: no folder %s\n", argv[i]);
            continue;
        }
        int first = n;
        for (struct dirent *e; (e = readdir(d)) && n < MAX_SPECS;) {
            size_t len = strlen(e->d_name);
            if (len > 5 && strcmp(e->d_name + len - 5, ".dino") == 0) {
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
                specs[n++] = strdup(path);
            }
        }
        closedir(d);
        qsort(specs + first, (size_t)(n - first), sizeof *specs, by_name);
    }
    return n;
}

/* The spec's CUDA source and plan; NULL (and a note) when the spec can't be generated. */
/* f64: 0 f32, 1 f64, PREC_FAST f32 with fast math (train { math fast }) */
enum { PREC_FAST = 2 };
static const char *const prec_names[] = {"f32", "f64", "f32 fast"};

static char *generate_fused(const char *path, int f64, int fuse, CudaPlan *plan, size_t *len, Frontend *fe) {
    char err[4096];
    if (frontend_run(fe, path, stdout, 0, NULL)) {
        if (strstr(path, "/planned/")) { /* a planned feature not there yet: only those that check */
            printf("note %s: does not check yet (planned)\n", path);
            return NULL;
        }
        printf("FAIL %s: the spec does not check\n", path);
        failures++;
        return NULL;
    }
    if (f64 == PREC_FAST) fe->model->train.fast_math = 1;
    EmitOptions opt = {.f64 = f64 == 1, .spec_hash = 7, .fuse = fuse};
    char *src = generate_cuda(&fe->arena, fe->model, JAC_AUTO, &opt, len, plan, err, sizeof err);
    if (!src) printf("note %s: not generated: %s\n", path, err);
    return src;
}

static char *generate(const char *path, int f64, CudaPlan *plan, size_t *len, Frontend *fe) {
    return generate_fused(path, f64, FUSE_AUTO, plan, len, fe);
}

/* ---------------------------------------------------------------------------- --plan */

static void check(int ok, const char *spec, const char *what, const char *kernel) {
    if (ok) return;
    printf("FAIL %s: %s%s%s\n", spec, kernel ? kernel : "", kernel ? ": " : "", what);
    failures++;
}

/* Occurrences of needle in haystack. */
static int count(const char *haystack, const char *needle) {
    int c = 0;
    for (const char *p = haystack; (p = strstr(p, needle)); p += strlen(needle)) c++;
    return c;
}

static void check_program(const char *spec, const char *src, const char *prog, const CudaLaunch *l, int n_launch) {
    for (int i = 0; i < n_launch; i++) {
        char want[64], grad[64], def[256];
        snprintf(want, sizeof want, "dino_%s_k%d", prog, i);
        snprintf(grad, sizeof grad, "dino_%s_grad_", prog);
        /* dino_<prog>_k<i> by launch order, or a parameter's gradient kernel named by it */
        check(strcmp(l[i].kernel, want) == 0 ||
                  (strncmp(l[i].kernel, grad, strlen(grad)) == 0 && l[i].stages == 1 && !l[i].tiles &&
                   strlen(l[i].kernel) > strlen(grad)),
              spec, "not named in launch order nor by its parameter", l[i].kernel);
        for (int j = 0; j < i; j++) check(strcmp(l[i].kernel, l[j].kernel) != 0, spec, "named twice", l[i].kernel);
        snprintf(def, sizeof def, "extern \"C\" __global__ void __launch_bounds__(%d) %s(DINO_%s_PARAMS) {", l[i].block,
                 l[i].kernel, strcmp(prog, "train") == 0 ? "TRAIN" : "PREDICT");
        check(count(src, def) == 1, spec, "not defined exactly once with the program's parameters", l[i].kernel);
        check(l[i].block >= 32 && l[i].block <= 1024 && l[i].block % 32 == 0, spec, "bad block size", l[i].kernel);
        check(l[i].shared >= 0 && l[i].shared <= 48 * 1024, spec, "bad dynamic shared memory", l[i].kernel);
        check(l[i].grid_y >= 1 && l[i].grid_y <= 65535 && l[i].grid_z >= 1 && l[i].grid_z <= 65535, spec,
              "grid y or z out of range", l[i].kernel);
        check(l[i].tiles || (l[i].per_sample > 0 ? l[i].per_block > 0 : l[i].fixed_x >= 1), spec, "no grid.x rule",
              l[i].kernel);
        check(l[i].tiles ? l[i].stages >= 2 : l[i].stages == 1, spec, "a tile kernel of one stage, or stages elsewhere",
              l[i].kernel);
        static const int batches[] = {1, 7, 64, 4096};
        for (size_t b = 0; b < sizeof batches / sizeof *batches; b++) {
            long gx = cuda_grid_x(&l[i], batches[b], 264);
            check(gx >= 1 && gx <= 2147483647L, spec, "grid x out of range", l[i].kernel);
            if (l[i].tiles)
                check(gx == (batches[b] < 264 ? batches[b] : 264), spec, "a tile grid is not min(n, tiles)",
                      l[i].kernel);
            else if (l[i].per_sample > 0)
                check(gx * l[i].per_block >= (long)batches[b] * l[i].per_sample, spec, "grid does not cover the batch",
                      l[i].kernel);
        }
    }
    /* no program kernel beyond the plan */
    char extra[128];
    snprintf(extra, sizeof extra, "__global__ void __launch_bounds__(%d) dino_%s_", DINO_CUDA_THREADS, prog);
    check(count(src, extra) == n_launch, spec, "the .cu has more kernels than the plan", NULL);
}

static int run_plan(int n_specs, char **specs) {
    for (int s = 0; s < n_specs; s++) {
        for (int f64 = 0; f64 < 2; f64++) {
            Frontend fe;
            CudaPlan plan, again;
            size_t len, len2;
            char *src = generate(specs[s], f64, &plan, &len, &fe);
            if (!src) {
                frontend_free(&fe);
                continue;
            }
            char err[256];
            EmitOptions opt = {.f64 = f64, .spec_hash = 7};
            char *src2 = generate_cuda(&fe.arena, fe.model, JAC_AUTO, &opt, &len2, &again, err, sizeof err);
            check(src2 && len == len2 && memcmp(src, src2, len) == 0, specs[s], "generating twice differs", NULL);
            check(src2 && again.n_predict == plan.n_predict && again.n_train == plan.n_train, specs[s],
                  "plans of two generations differ", NULL);
            const Model *m = fe.model;
            check(plan.in == m->in_dim && plan.out == m->out_dim && plan.n_loss == m->n_loss && plan.f64 == f64 &&
                      plan.n_params == (long long)m->n_weights && plan.spec_hash == 7,
                  specs[s], "the plan's model facts are wrong", NULL);
            check(plan.predict_work > 0 && plan.train_work > 0, specs[s], "empty workspace", NULL);
            check(plan.n_predict >= 1 && plan.n_train >= 2, specs[s], "too few kernels", NULL);
            check(count(src, "\n#include") == 0 && count(src, "\n #include") == 0, specs[s], "the .cu has an #include",
                  NULL);
            check(count(src, "extern \"C\" __global__") == plan.n_predict + plan.n_train + 8, specs[s],
                  "kernel count differs from the plan plus the 8 utility kernels", NULL);
            check_program(specs[s], src, "predict", plan.predict, plan.n_predict);
            check_program(specs[s], src, "train", plan.train, plan.n_train);
            printf("%-4s %s %s: %d + %d kernels, workspace %ld + %ld reals per row\n", failures ? "..." : "ok",
                   specs[s], f64 ? "f64" : "f32", plan.n_predict, plan.n_train, plan.predict_work, plan.train_work);
            free(src);
            free(src2);
            cuda_plan_free(&plan);
            cuda_plan_free(&again);
            frontend_free(&fe);
        }
    }
    return failures ? 1 : 0;
}

/* ---------------------------------------------------------------------------- --nvrtc */

/* The launch of kernel `name` in the plan, or NULL. */
static const CudaLaunch *plan_launch(const CudaPlan *plan, const char *name) {
    for (int i = 0; i < plan->n_predict; i++)
        if (strcmp(plan->predict[i].kernel, name) == 0) return &plan->predict[i];
    for (int i = 0; i < plan->n_train; i++)
        if (strcmp(plan->train[i].kernel, name) == 0) return &plan->train[i];
    return NULL;
}

/* ptxas's report (--ptxas-options=-v) against what the launches allow: no function spills
 * registers, every kernel's static shared memory plus the dynamic shared memory its launch asks
 * for fits the 48 KiB a launch gets without cuFuncSetAttribute, and no kernel uses more
 * registers than its __launch_bounds__ leaves (65536 / block, at most 255). Returns the
 * problems found (each printed). Sets *kernels to the kernels reported, *max_regs, *max_smem. */
static int check_ptxas(const char *what, const char *log, const CudaPlan *plan, int *kernels, int *max_regs,
                       int *max_smem) {
    int bad = 0;
    char fn[256] = "", entry[256] = "";
    *kernels = *max_regs = *max_smem = 0;
    for (const char *line = log; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s", (int)(n < sizeof buf ? n : sizeof buf - 1), line);
        const char *p;
        if ((p = strstr(buf, "Compiling entry function '"))) {
            sscanf(p + 26, "%255[^']", entry);
        } else if ((p = strstr(buf, "Function properties for "))) {
            sscanf(p + 24, "%255s", fn);
        } else if ((p = strstr(buf, "bytes spill stores"))) {
            int frame = 0, stores = 0, loads = 0;
            if (sscanf(buf, " %d bytes stack frame, %d bytes spill stores, %d bytes spill loads", &frame, &stores,
                       &loads) == 3 &&
                (stores || loads)) {
                printf("FAIL %s: ptxas: %s spills (%d bytes stores, %d bytes loads)\n", what, fn, stores, loads);
                bad++;
            }
        } else if ((p = strstr(buf, "Used ")) && strstr(buf, "registers") && *entry) {
            int regs = 0, smem = 0;
            sscanf(p + 5, "%d", &regs);
            const char *q = strstr(buf, "bytes smem");
            if (q) {
                while (q > buf && q[-1] == ' ') q--;
                while (q > buf && q[-1] >= '0' && q[-1] <= '9') q--;
                smem = atoi(q);
            }
            const CudaLaunch *l = plan_launch(plan, entry);
            int block = l ? l->block : 256, dyn = l ? l->shared : 0;
            int reg_cap = 65536 / block > 255 ? 255 : 65536 / block;
            if (regs > reg_cap) {
                printf("FAIL %s: ptxas: %s uses %d registers, its launch bounds (%d threads) allow %d\n", what, entry,
                       regs, block, reg_cap);
                bad++;
            }
            if (smem + dyn > 48 * 1024) {
                printf("FAIL %s: ptxas: %s uses %d bytes of static shared memory + %d dynamic, above 48 KiB\n", what,
                       entry, smem, dyn);
                bad++;
            }
            (*kernels)++;
            if (regs > *max_regs) *max_regs = regs;
            if (smem > *max_smem) *max_smem = smem;
            entry[0] = 0;
        }
        line = nl ? nl + 1 : NULL;
    }
    return bad;
}

/* One compile, in a child process: prints one line, exits 0 (ok), 1 (failed) or 2 (spec not
 * generated: counted as a note). fuse: FUSE_AUTO, or FUSE_TILES (then skipped, exit 3, when
 * its source is auto's). */
static int compile_one(const char *spec, int f64, int sm, int fuse) {
    Frontend fe;
    CudaPlan plan;
    size_t len;
    char *src = generate_fused(spec, f64, fuse, &plan, &len, &fe);
    if (!src) {
        frontend_free(&fe);
        return failures ? 1 : 2;
    }
    if (fuse != FUSE_AUTO) {
        Frontend fe2;
        CudaPlan plan2;
        size_t len2;
        char *auto_src = generate_fused(spec, f64, FUSE_AUTO, &plan2, &len2, &fe2);
        int same = auto_src && len2 == len && memcmp(auto_src, src, len) == 0;
        if (auto_src) cuda_plan_free(&plan2);
        free(auto_src);
        frontend_free(&fe2);
        if (same) {
            free(src);
            cuda_plan_free(&plan);
            frontend_free(&fe);
            return 3;
        }
    }
    const char *fuse_name = fuse == FUSE_TILES ? "tiles" : "auto";
    int support = nvrtc_arch_supported(sm), cubin = support != 0;
    char arch[32], err[8192], *out = NULL, *log = NULL, name[256];
    size_t out_len;
    snprintf(arch, sizeof arch, "%s_%d", cubin ? "sm" : "compute", sm);
    snprintf(name, sizeof name, "%s.cu", fe.model->name);
    double t0 = t_now();
    int rc = nvrtc_compile_with(src, name, arch, cubin, cubin ? "--ptxas-options=-v" : NULL, &out, &out_len, &log, err,
                                sizeof err);
    if (rc == NVRTC_NO_CUBIN) { /* an NVRTC before 11.1 */
        free(log);
        cubin = 0;
        snprintf(arch, sizeof arch, "compute_%d", sm);
        rc = nvrtc_compile(src, name, arch, 0, &out, &out_len, &log, err, sizeof err);
    }
    double secs = t_now() - t0;
    int ok = rc == NVRTC_OK;
    char what[512];
    snprintf(what, sizeof what, "%s %s %s --fuse %s", spec, prec_names[f64], arch, fuse_name);
    int kernels = 0, max_regs = 0, max_smem = 0;
    if (!ok) {
        printf("FAIL %s: %s\n", what, err);
        if (log) printf("%s\n", log);
    } else if (log && strstr(log, "warning")) {
        printf("FAIL %s: NVRTC warnings:\n%s\n", what, log);
        ok = 0;
    } else if (cubin && check_ptxas(what, log, &plan, &kernels, &max_regs, &max_smem)) {
        ok = 0;
    } else if (cubin && kernels < plan.n_predict + plan.n_train) {
        printf("FAIL %s: ptxas reported %d kernels, the plan has %d (no resource report?)\n", what, kernels,
               plan.n_predict + plan.n_train);
        ok = 0;
    } else {
        /* every kernel of the plan is in the binary (a CUBIN's symbol table, a PTX .entry) */
        const CudaLaunch *lists[2] = {plan.predict, plan.train};
        int counts[2] = {plan.n_predict, plan.n_train};
        for (int p = 0; p < 2 && ok; p++)
            for (int i = 0; i < counts[p] && ok; i++) {
                size_t kl = strlen(lists[p][i].kernel);
                int found = 0;
                for (size_t at = 0; at + kl <= out_len && !found; at++)
                    found = memcmp(out + at, lists[p][i].kernel, kl) == 0 &&
                        (at + kl == out_len || out[at + kl] == 0 || out[at + kl] == '(' || out[at + kl] == '\n');
                if (!found) {
                    printf("FAIL %s %s %s: %s is not in the output\n", spec, prec_names[f64], arch, lists[p][i].kernel);
                    ok = 0;
                }
            }
        if (ok)
            printf("ok   %-48s %-8s %-10s %-5s %s %6.1f s  %8zu bytes  (%d + %d kernels, <= %d registers, <= %d B "
                   "static shared)\n",
                   spec, prec_names[f64], arch, fuse_name, cubin ? "cubin" : "ptx  ", secs, out_len, plan.n_predict,
                   plan.n_train, max_regs, max_smem);
    }
    fflush(stdout);
    free(out);
    free(log);
    free(src);
    cuda_plan_free(&plan);
    frontend_free(&fe);
    return ok ? 0 : 1;
}

static int run_nvrtc(int n_specs, char **specs) {
    char err[4096];
    if (nvrtc_load(err, sizeof err)) {
        printf("SKIP: NVRTC not found: %s\n", err);
        return SKIP;
    }
    int major = 0, minor = 0;
    nvrtc_version(&major, &minor);
    printf("NVRTC %d.%d\n", major, minor);
    fflush(stdout);
    static const int archs[] = {80, 90};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int jobs = cpus < 1 ? 1 : cpus > 4 ? 4 : (int)cpus, running = 0, notes = 0;
    double t0 = t_now();
    static const int fuses[] = {FUSE_AUTO, FUSE_TILES};
    for (int s = 0; s < n_specs; s++)
        for (int f64 = 0; f64 <= PREC_FAST; f64++) /* f32, f64, f32 with fast math (fuse auto) */
            for (size_t a = 0; a < sizeof archs / sizeof *archs; a++)
                for (size_t fu = 0; fu < sizeof fuses / sizeof *fuses; fu++) {
                    if (f64 == PREC_FAST && fuses[fu] != FUSE_AUTO) continue;
                    if (running == jobs) {
                        int status;
                        if (wait(&status) > 0) {
                            running--;
                            int code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
                            failures += code == 1, notes += code == 2;
                        }
                    }
                    pid_t pid = fork();
                    if (pid == 0) _exit(compile_one(specs[s], f64, archs[a], fuses[fu]));
                    if (pid < 0) {
                        failures += compile_one(specs[s], f64, archs[a], fuses[fu]) == 1;
                        continue;
                    }
                    running++;
                }
    for (int status; running > 0 && wait(&status) > 0; running--) {
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
        failures += code == 1, notes += code == 2;
    }
    printf("%s: %d spec%s, %d failure%s, %d not generated, %.0f s\n", failures ? "FAIL" : "ok", n_specs,
           n_specs == 1 ? "" : "s", failures, failures == 1 ? "" : "s", notes, t_now() - t0);
    return failures ? 1 : 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3 || (strcmp(argv[1], "--plan") && strcmp(argv[1], "--nvrtc"))) {
        fprintf(stderr, "usage: test_cuda --plan|--nvrtc DIR...\n");
        return 2;
    }
    char *specs[MAX_SPECS];
    int n = list_specs(argc - 2, argv + 2, specs);
    if (n == 0) {
        printf("SKIP: no specs in the folders given\n");
        return SKIP;
    }
    int rc = strcmp(argv[1], "--plan") == 0 ? run_plan(n, specs) : run_nvrtc(n, specs);
    for (int i = 0; i < n; i++) free(specs[i]);
    return rc;
}
