/* dinoc.c - the compiler command: checks a spec and writes what was asked for.
 *
 *   dinoc MODEL.dino [-o OUT] [--target cuda|c] [--emit ast|params|ir|ptx] [--check]
 *                    [--arch sm_XX] [--fuse auto|none|tiles]
 *
 * Exit status: 0 success, 1 user error (bad spec, bad flag), 2 internal error. */
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "emit.h"
#include "frontend.h"
#include "npy.h"
#include "nvrtc.h"

static void usage(FILE *out) {
    fputs("usage: dinoc MODEL.dino [-o OUT] [--target cuda|c] [--emit ast|params|ir|ptx] [--check]\n"
          "             [--precision f32|f64] [--jacobian auto|forward|reverse] [--arch sm_XX]\n"
          "             [--fuse auto|none|tiles]\n"
          "  --check         parse and check the spec only\n"
          "  --emit params   print each parameter's name and shape, in definition order\n"
          "  --emit ast      print the syntax tree\n"
          "  --emit ir       print the IR of the prediction and training programs\n"
          "  --emit ptx      compile the CUDA source with NVRTC and write PTX (for --arch)\n"
          "  --target cuda   write the GPU backend's CUDA source (the default)\n"
          "  --target c      write the CPU backend's C source\n"
          "  --arch sm_XX    GPU architecture for --emit ptx (default sm_80)\n"
          "  --precision P   f32 or f64 for generated code (default: the spec's train precision)\n"
          "  --jacobian M    auto, forward or reverse mode for the Jacobian (default auto)\n"
          "  --fuse F        CUDA kernels: tiles (a tile of samples per block through many stages),\n"
          "                  none (a kernel per stage), auto (tiles when every layer is small)\n"
          "  -o OUT          write generated source to OUT (default: standard output)\n",
          out);
}

static const char *precision;
static const char *arch = "sm_80";
static int fuse = FUSE_AUTO;

/* Writes len bytes of text to stdout or, atomically, to path. Returns 0, or 1 after a message. */
static int write_output(const char *path, const char *text, size_t len) {
    if (!path) return fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : 1;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *out = fopen(tmp, "w");
    int ok = out && fwrite(text, 1, len, out) == len;
    if (out && fclose(out) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "dinoc: error: cannot write '%s': %s\n", path, strerror(errno));
        remove(tmp);
        return 1;
    }
    return 0;
}

/* The CUDA target: the .cu itself, or (--emit ptx) its PTX from NVRTC. */
static int generate_cuda_target(Frontend *fe, const Programs *pr, const EmitOptions *opt, int ptx,
                                const char *out_path) {
    char err[4096];
    char *src = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&src, &len);
    if (!f) {
        fputs("dinoc: error: out of memory\n", stderr);
        return 2;
    }
    int rc = emit_cuda(f, fe->model, pr, opt, NULL, err, sizeof err);
    fclose(f);
    if (rc) {
        fprintf(stderr, "%s\n", err);
        free(src);
        return 1;
    }
    if (!ptx) {
        rc = write_output(out_path, src, len);
        free(src);
        return rc;
    }
    char *code = NULL, *log = NULL, name[256];
    size_t code_len = 0;
    snprintf(name, sizeof name, "%s.cu", fe->model->name);
    if (nvrtc_load(err, sizeof err) == NVRTC_OK && nvrtc_arch_supported(atoi(arch + 3)) == 0) {
        int archs[64], n = nvrtc_supported_archs(archs, 64), major = 0, minor = 0;
        nvrtc_version(&major, &minor);
        fprintf(stderr, "dinoc: error: NVRTC %d.%d cannot compile for %s; it supports", major, minor, arch);
        for (int i = 0; i < n; i++) fprintf(stderr, "%s sm_%d", i ? "," : "", archs[i]);
        fputc('\n', stderr);
        free(src);
        return 1;
    }
    rc = nvrtc_compile(src, name, arch, 0, &code, &code_len, &log, err, sizeof err);
    free(src);
    if (rc == NVRTC_MISSING) {
        fprintf(stderr, "dinoc: error: %s\n", err);
        free(log);
        return 1;
    }
    if (rc) { /* the generated source did not compile: a bug in dinoc */
        fprintf(stderr, "dinoc: internal error: %s\n", err);
        if (log && *log) fprintf(stderr, "%s\n", log);
        free(log);
        return 2;
    }
    free(log);
    rc = write_output(out_path, code, code_len);
    free(code);
    return rc;
}

/* Builds the IR programs and writes what was asked: the IR, C or CUDA source, or PTX. */
static int generate(Frontend *fe, const char *emit, const char *target, const char *out_path, JacMode jac) {
    const char *emit_ptx = emit && strcmp(emit, "ptx") == 0 ? emit : NULL;
    if (emit_ptx) emit = NULL; /* from here on, emit means --emit ir */
    char err[1024];
    Programs pr;
    if (build_programs(&fe->arena, fe->model, jac, &pr, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (emit) {
        ir_print(stdout, &pr.predict, "predict");
        ir_print(stdout, &pr.train, "train");
        return 0;
    }
    EmitOptions opt = {.f64 = precision ? strcmp(precision, "f64") == 0 : fe->model->train.f64,
                       .spec_hash = fe->hash, .fuse = fuse};
    if (strcmp(target, "cuda") == 0) return generate_cuda_target(fe, &pr, &opt, emit_ptx != NULL, out_path);
    FILE *out = stdout;
    char tmp[4096];
    if (out_path) {
        snprintf(tmp, sizeof tmp, "%s.tmp.%d", out_path, (int)getpid());
        out = fopen(tmp, "w");
        if (!out) {
            fprintf(stderr, "dinoc: error: cannot write '%s': %s\n", out_path, strerror(errno));
            return 1;
        }
    }
    int rc = emit_c(out, fe->model, &pr, &opt, err, sizeof err);
    if (out_path) {
        if (fclose(out) != 0 || rc != 0 || rename(tmp, out_path) != 0) {
            fprintf(stderr, "dinoc: error: cannot write '%s': %s\n", out_path, rc ? err : strerror(errno));
            remove(tmp);
            return 1;
        }
    }
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    const char *spec = NULL, *out_path = NULL, *emit = NULL, *target = "cuda";
    int check_only = 0;
    JacMode jac = JAC_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--check") == 0) check_only = 1;
        else if (strcmp(a, "--jacobian") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            if (strcmp(v, "auto") == 0) jac = JAC_AUTO;
            else if (strcmp(v, "forward") == 0) jac = JAC_FORWARD;
            else if (strcmp(v, "reverse") == 0) jac = JAC_REVERSE;
            else {
                fprintf(stderr, "dinoc: error: --jacobian must be auto, forward or reverse, not '%s'\n", v);
                return 1;
            }
        } else if (strcmp(a, "--precision") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            if (strcmp(v, "f32") && strcmp(v, "f64")) {
                fprintf(stderr, "dinoc: error: --precision must be f32 or f64, not '%s'\n", v);
                return 1;
            }
            precision = v;
        } else if (strcmp(a, "--fuse") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            if ((fuse = fuse_mode(v)) < 0) {
                fprintf(stderr, "dinoc: error: --fuse must be auto, none or tiles, not '%s'\n", v);
                return 1;
            }
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--arch") == 0 && i + 1 < argc) {
            arch = argv[++i];
            if (strncmp(arch, "sm_", 3) != 0 || arch[3] < '0' || arch[3] > '9') {
                fprintf(stderr, "dinoc: error: --arch must look like sm_80 or sm_90, not '%s'\n", arch);
                return 1;
            }
        } else if ((strcmp(a, "-o") == 0 || strcmp(a, "--emit") == 0 || strcmp(a, "--target") == 0)) {
            if (i + 1 >= argc) {
                fprintf(stderr, "dinoc: error: %s needs a value\n", a);
                return 1;
            }
            const char *v = argv[++i];
            if (a[1] == 'o') out_path = v;
            else if (a[2] == 'e') emit = v;
            else target = v;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "dinoc: error: unknown option '%s'\n", a);
            usage(stderr);
            return 1;
        } else if (spec) {
            fprintf(stderr, "dinoc: error: more than one spec file ('%s' and '%s')\n", spec, a);
            return 1;
        } else {
            spec = a;
        }
    }
    if (!spec) {
        fputs("dinoc: error: no spec file given\n", stderr);
        usage(stderr);
        return 1;
    }
    if (emit && strcmp(emit, "ast") && strcmp(emit, "params") && strcmp(emit, "ir") && strcmp(emit, "ptx")) {
        fprintf(stderr, "dinoc: error: unknown --emit '%s'; expected ast, params, ir or ptx\n", emit);
        return 1;
    }
    if (strcmp(target, "cuda") && strcmp(target, "c")) {
        fprintf(stderr, "dinoc: error: unknown --target '%s'; expected cuda or c\n", target);
        return 1;
    }
    if (emit && strcmp(emit, "ptx") == 0 && strcmp(target, "c") == 0) {
        fputs("dinoc: error: --emit ptx needs --target cuda (the default)\n", stderr);
        return 1;
    }

    Frontend fe;
    int rc = frontend_run(&fe, spec, stderr, 0, npy_shape);
    if (rc == 0 && emit && strcmp(emit, "ast") == 0) ast_print(stdout, fe.ast);
    if (rc == 0 && emit && strcmp(emit, "params") == 0) model_print_params(stdout, fe.model);
    if (rc == 0 && !check_only && (!emit || strcmp(emit, "ir") == 0 || strcmp(emit, "ptx") == 0))
        rc = generate(&fe, emit, target, out_path, jac);
    frontend_free(&fe);
    return rc;
}
