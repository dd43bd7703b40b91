/* dinoc.c - the compiler command: checks a spec and writes what was asked for, through dino.h.
 *
 *   dinoc MODEL.dino [-o OUT] [--target cuda|c] [--emit ast|params|ir|ptx] [--check]
 *                    [--arch sm_XX] [--fuse auto|none|tiles]
 *
 * Exit status (dino_status): DINO_OK 0 success, DINO_EUSER 1 user error (bad spec, bad flag),
 * DINO_EINTERNAL 2 internal error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dino.h"

static void usage(FILE *out) {
    fputs("usage: dinoc MODEL.dino [-o OUT] [--target cuda|c] [--emit ast|params|ir|ptx] [--check]\n"
          "             [--precision f32|f64] [--jacobian auto|forward|reverse] [--arch sm_XX]\n"
          "             [--fuse auto|none|tiles] [--math precise|fast]\n"
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
          "  --math M        precise (default: the spec's train math) or fast: f32 activations in float with\n"
          "                  fast intrinsics (CUDA __expf, __fdividef; C expf); no effect in f64\n"
          "  -o OUT          write generated source to OUT (default: standard output), atomically;\n"
          "                  OUT may not be the spec or one of its data files\n"
          "  --version       the version, the git commit, the CUDA driver and NVRTC found\n"
          "  -h, --help      this text\n",
          out);
}

/* --help: the flags, then the exit status and every environment variable dinoc reads (the test
 * group help in tests/cli/run_cli.sh checks them against the sources' getenv calls). */
static void help(void) {
    usage(stdout);
    fputs("\nexit status: 0 success, 1 user error (spec errors, bad flag, unwritable output, NVRTC missing\n"
          "for --emit ptx), 2 internal error\n"
          "\nenvironment (--emit ptx):\n"
          "  DINO_NVRTC       the NVRTC library to load (else libnvrtc.so[.13|.12|.11.2] on the loader's path,\n"
          "                   then under $CUDA_HOME/lib64, $CUDA_PATH/lib64, /usr/local/cuda/lib64)\n"
          "  CUDA_HOME, CUDA_PATH  CUDA toolkit folders searched for NVRTC\n"
          "  DINO_NVRTC_OPT   NVRTC optimisation: min (default, --Ofast-compile=min), mid, max, full\n"
          "\nread by dino-jit only (dino-jit --help says more):\n"
          "  DINO_CACHE_DIR, DINO_CACHE_MAX_MB  the compiled-code cache's folder (default $HOME/.cache/dino)\n"
          "                   and size cap in MiB; HOME  where the default folder is\n"
          "  CC, DINO_CFLAGS  the host C compiler of the CPU backend and its flags\n"
          "  OMP_NUM_THREADS, OMP_WAIT_POLICY  the CPU backend's threads and how idle ones wait\n"
          "  DINO_CUDA_DRIVER the CUDA driver library instead of libcuda.so.1\n"
          "  DINO_CUDA_FUSE, DINO_CUDA_SHARE, DINO_CUDA_GRAPH  CUDA kernel grouping (as --fuse), code\n"
          "                   sharing (0: off), CUDA graphs (0: off)\n"
          "  DINO_CUDA_DEBUG  1: dino-jit synchronises after every CUDA launch and names a faulting kernel\n"
          "  DINO_CUDA_STREAM 1: dino-jit streams the training batches from host memory; 0: never; unset:\n"
          "                   when the data do not fit in GPU memory\n"
          "  DINO_REDUCED     0: dino-jit trains a basis model in the full-space graph, not reduced\n"
          "  DINO_DATA_MAP    0: dino-jit copies every data file into memory instead of mapping the .npy files\n"
          "                   that already have the training dtype\n"
          "  DINO_READ_AHEAD  1 or 0: dino-jit's read-ahead of mapped data always or never (default: when needed)\n"
          "  OMPI_COMM_WORLD_SIZE, PMI_SIZE, SLURM_NTASKS, SLURM_PROCID  mpirun or srun started dino-jit:\n"
          "                   data-parallel training; DINO_CUDA_DEVICE  the GPU; DINO_NCCL_LIB  NCCL's library\n"
          "\ndocs/commands.md and `man dinoc` say more.\n",
          stdout);
}

/* Writes len bytes of text to stdout or, atomically, to path (dino_write_file). Returns
 * DINO_OK, or DINO_EUSER after a message. */
static int write_output(const char *path, const char *text, size_t len) {
    if (!path) return fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0 ? DINO_OK : DINO_EUSER;
    if (dino_write_file(path, text, len) == DINO_OK) return DINO_OK;
    fprintf(stderr, "dinoc: error: cannot write '%s': %s\n", path, dino_last_error());
    return DINO_EUSER;
}

/* -o may not replace the spec or a file its data section reads (compared by file identity). */
static int check_output(dino_spec *spec, const char *spec_path, const char *out_path) {
    if (!out_path) return DINO_OK;
    if (dino_same_file(out_path, spec_path)) {
        fprintf(stderr, "dinoc: error: -o '%s' is the spec '%s'; refusing to overwrite it, choose another path\n",
                out_path, spec_path);
        return DINO_EUSER;
    }
    size_t n = 0;
    dino_spec_info info;
    if (dino_spec_info_get(spec, &info) || !info.data_dir || dino_spec_data_files(spec, NULL, &n)) return DINO_OK;
    for (size_t i = 0; i < n; i++)
        if (dino_same_file(out_path, dino_spec_data_file(spec, i))) {
            fprintf(stderr,
                    "dinoc: error: -o '%s' is the data file '%s'; refusing to overwrite it, choose another path\n",
                    out_path, dino_spec_data_file(spec, i));
            return DINO_EUSER;
        }
    return DINO_OK;
}

/* Prints the library's message for a failed call and returns its status as the exit code. */
static int report(dino_status st) {
    if (dino_last_error_is_complete()) fprintf(stderr, "%s\n", dino_last_error());
    else fprintf(stderr, "dinoc: %s: %s\n", st == DINO_EINTERNAL ? "internal error" : "error", dino_last_error());
    return st;
}

/* One target's text, to stdout (ast, params, ir) or to out_path. */
static int emit(dino_spec *spec, dino_target target, const dino_emit_options *opt, const char *out_path) {
    char *text;
    size_t len;
    dino_status st = dino_generate(spec, target, opt, &text, &len);
    if (st) return report(st);
    int to_stdout = target == DINO_TARGET_AST || target == DINO_TARGET_PARAMS || target == DINO_TARGET_IR;
    int rc = write_output(to_stdout ? NULL : out_path, text, len);
    dino_free(text);
    return rc;
}

int main(int argc, char **argv) {
    const char *spec_path = NULL, *out_path = NULL, *emit_what = NULL, *target = "cuda", *math = NULL;
    int check_only = 0;
    dino_emit_options opt = {.arch = "sm_80"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--check") == 0) check_only = 1;
        else if (strcmp(a, "--jacobian") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            if (strcmp(v, "auto") == 0) opt.jacobian = DINO_JACOBIAN_AUTO;
            else if (strcmp(v, "forward") == 0) opt.jacobian = DINO_JACOBIAN_FORWARD;
            else if (strcmp(v, "reverse") == 0) opt.jacobian = DINO_JACOBIAN_REVERSE;
            else {
                fprintf(stderr, "dinoc: error: --jacobian must be auto, forward or reverse, not '%s'\n", v);
                return DINO_EUSER;
            }
        } else if (strcmp(a, "--precision") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            if (strcmp(v, "f32") && strcmp(v, "f64")) {
                fprintf(stderr, "dinoc: error: --precision must be f32 or f64, not '%s'\n", v);
                return DINO_EUSER;
            }
            opt.precision = strcmp(v, "f64") == 0 ? DINO_PRECISION_F64 : DINO_PRECISION_F32;
        } else if (strcmp(a, "--math") == 0 && i + 1 < argc) {
            math = argv[++i];
            if (strcmp(math, "precise") && strcmp(math, "fast")) {
                fprintf(stderr, "dinoc: error: --math must be precise or fast, not '%s'\n", math);
                return DINO_EUSER;
            }
        } else if (strcmp(a, "--fuse") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            if (strcmp(v, "auto") == 0) opt.fuse = DINO_FUSE_AUTO;
            else if (strcmp(v, "none") == 0) opt.fuse = DINO_FUSE_NONE;
            else if (strcmp(v, "tiles") == 0) opt.fuse = DINO_FUSE_TILES;
            else {
                fprintf(stderr, "dinoc: error: --fuse must be auto, none or tiles, not '%s'\n", v);
                return DINO_EUSER;
            }
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            help();
            return DINO_OK;
        } else if (strcmp(a, "--version") == 0) {
            printf("dinoc %s\n%s", dino_version(), dino_version_details());
            return DINO_OK;
        } else if (strcmp(a, "--arch") == 0 && i + 1 < argc) {
            opt.arch = argv[++i];
            if (strncmp(opt.arch, "sm_", 3) != 0 || opt.arch[3] < '0' || opt.arch[3] > '9') {
                fprintf(stderr, "dinoc: error: --arch must look like sm_80 or sm_90, not '%s'\n", opt.arch);
                return DINO_EUSER;
            }
        } else if ((strcmp(a, "-o") == 0 || strcmp(a, "--emit") == 0 || strcmp(a, "--target") == 0)) {
            if (i + 1 >= argc) {
                fprintf(stderr, "dinoc: error: %s needs a value\n", a);
                return DINO_EUSER;
            }
            const char *v = argv[++i];
            if (a[1] == 'o') out_path = v;
            else if (a[2] == 'e') emit_what = v;
            else target = v;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "dinoc: error: unknown option '%s'\n", a);
            usage(stderr);
            return DINO_EUSER;
        } else if (spec_path) {
            fprintf(stderr, "dinoc: error: more than one spec file ('%s' and '%s')\n", spec_path, a);
            return DINO_EUSER;
        } else {
            spec_path = a;
        }
    }
    if (!spec_path) {
        fputs("dinoc: error: no spec file given\n", stderr);
        usage(stderr);
        return DINO_EUSER;
    }
    if (emit_what && strcmp(emit_what, "ast") && strcmp(emit_what, "params") && strcmp(emit_what, "ir") &&
        strcmp(emit_what, "ptx")) {
        fprintf(stderr, "dinoc: error: unknown --emit '%s'; expected ast, params, ir or ptx\n", emit_what);
        return DINO_EUSER;
    }
    if (strcmp(target, "cuda") && strcmp(target, "c")) {
        fprintf(stderr, "dinoc: error: unknown --target '%s'; expected cuda or c\n", target);
        return DINO_EUSER;
    }
    if (emit_what && strcmp(emit_what, "ptx") == 0 && strcmp(target, "c") == 0) {
        fputs("dinoc: error: --emit ptx needs --target cuda (the default)\n", stderr);
        return DINO_EUSER;
    }

    dino_spec *spec;
    dino_status st = dino_spec_load(spec_path, &spec);
    if (!spec) return report(st);
    fputs(dino_spec_diagnostics_text(spec), stderr);
    int rc = st;
    if (rc == DINO_OK && math && dino_spec_set(spec, "math", math) != DINO_OK) rc = report(DINO_EUSER);
    if (rc == DINO_OK && !check_only && (!emit_what || strcmp(emit_what, "ptx") == 0))
        rc = check_output(spec, spec_path, out_path);
    if (rc == DINO_OK && !check_only) {
        dino_target t = strcmp(target, "c") == 0 ? DINO_TARGET_C : DINO_TARGET_CUDA;
        if (!emit_what) rc = emit(spec, t, &opt, out_path);
        else if (strcmp(emit_what, "ast") == 0) rc = emit(spec, DINO_TARGET_AST, &opt, NULL);
        else if (strcmp(emit_what, "params") == 0) rc = emit(spec, DINO_TARGET_PARAMS, &opt, NULL);
        else if (strcmp(emit_what, "ir") == 0) rc = emit(spec, DINO_TARGET_IR, &opt, NULL);
        else rc = emit(spec, DINO_TARGET_PTX, &opt, out_path);
    } else if (rc == DINO_OK && emit_what && (strcmp(emit_what, "ast") == 0 || strcmp(emit_what, "params") == 0)) {
        rc = emit(spec, strcmp(emit_what, "ast") == 0 ? DINO_TARGET_AST : DINO_TARGET_PARAMS, &opt, NULL);
    }
    dino_spec_free(spec);
    return rc;
}
