/* generate.c - dino.h's dino_generate: a checked spec -> the text of a target, in memory
 * (CUDA, C, PTX through NVRTC, the IR, the syntax tree, the parameter table). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "emit.h"
#include "nvrtc.h"

/* The CUDA source compiled by NVRTC to PTX for arch ("sm_80"); src is consumed. */
static dino_status compile_ptx(const Model *m, char *src, const char *arch, char **text, size_t *len) {
    char err[4096], name[256];
    if (strncmp(arch, "sm_", 3) != 0 || arch[3] < '0' || arch[3] > '9') {
        free(src);
        return api_fail(DINO_EUSER, 0, "the architecture must look like sm_80 or sm_90, not '%s'", arch);
    }
    if (nvrtc_load(err, sizeof err) == NVRTC_OK && nvrtc_arch_supported(atoi(arch + 3)) == 0) {
        int archs[64], n = nvrtc_supported_archs(archs, 64), major = 0, minor = 0, k = 0;
        char list[512] = "";
        for (int i = 0; i < n && (size_t)k < sizeof list; i++)
            k += snprintf(list + k, sizeof list - (size_t)k, "%s sm_%d", i ? "," : "", archs[i]);
        nvrtc_version(&major, &minor);
        free(src);
        return api_fail(DINO_EUSER, 0, "NVRTC %d.%d cannot compile for %s; it supports%s", major, minor, arch, list);
    }
    char *log = NULL;
    snprintf(name, sizeof name, "%s.cu", m->name);
    int rc = nvrtc_compile(src, name, arch, 0, text, len, &log, err, sizeof err);
    free(src);
    dino_status st = DINO_OK;
    if (rc == NVRTC_MISSING) st = api_fail(DINO_EUSER, 0, "%s", err);
    else if (rc) /* the generated source did not compile: a bug in dino */
        st = api_fail(DINO_EINTERNAL, 0, "%s%s%s", err, log && *log ? "\n" : "", log && *log ? log : "");
    free(log);
    return st;
}

static dino_status dino_generate_unguarded(dino_spec *spec, dino_target target, const dino_emit_options *opts,
                                           char **text, size_t *len);

dino_status dino_generate(dino_spec *spec, dino_target target, const dino_emit_options *opts, char **text,
                          size_t *len) {
    API_GUARDED(dino_generate_unguarded(spec, target, opts, text, len));
}

static dino_status dino_generate_unguarded(dino_spec *spec, dino_target target, const dino_emit_options *opts,
                                           char **text, size_t *len) {
    static const dino_emit_options defaults = {0};
    if (!opts) opts = &defaults;
    *text = NULL;
    *len = 0;
    if (!spec || !spec->ok) return api_fail(DINO_EUSER, 0, "the spec has errors");
    Frontend *fe = &spec->fe;
    const Model *m = fe->model;
    if (target > DINO_TARGET_PARAMS || (unsigned)opts->fuse > DINO_FUSE_TILES)
        return api_fail(DINO_EUSER, 0, "no such target or fuse mode");
    FILE *f = open_memstream(text, len);
    if (!f) return api_fail(DINO_EINTERNAL, 0, "out of memory");
    if (target == DINO_TARGET_AST || target == DINO_TARGET_PARAMS) {
        if (target == DINO_TARGET_AST) ast_print(f, fe->ast);
        else model_print_params(f, m);
        fclose(f);
        return DINO_OK;
    }
    char err[4096];
    Programs pr;
    if (build_programs(&fe->arena, m, api_jac_mode(opts->jacobian), &pr, err, sizeof err)) {
        fclose(f);
        free(*text), *text = NULL, *len = 0;
        return api_fail(DINO_EUSER, 1, "%s", err);
    }
    int rc = 0;
    EmitOptions eo = {.f64 =
                          opts->precision == DINO_PRECISION_SPEC ? m->train.f64 : opts->precision == DINO_PRECISION_F64,
                      .spec_hash = fe->hash,
                      .fuse = opts->fuse == DINO_FUSE_NONE ? FUSE_NONE
                          : opts->fuse == DINO_FUSE_TILES  ? FUSE_TILES
                                                           : FUSE_AUTO,
                      .no_share = opts->no_share};
    if (target == DINO_TARGET_IR) {
        ir_print(f, &pr.predict, "predict");
        ir_print(f, &pr.train, "train");
    } else if (target == DINO_TARGET_C) {
        rc = emit_c(f, m, &pr, &eo, err, sizeof err);
    } else {
        rc = emit_cuda(f, m, &pr, &eo, NULL, err, sizeof err);
    }
    if (fclose(f) != 0 && !rc) {
        rc = -1;
        snprintf(err, sizeof err, "out of memory generating code");
    }
    if (rc) {
        free(*text), *text = NULL, *len = 0;
        return api_fail(DINO_EUSER, 1, "%s", err);
    }
    if (target != DINO_TARGET_PTX) return DINO_OK;
    char *src = *text;
    *text = NULL, *len = 0;
    return compile_ptx(m, src, opts->arch ? opts->arch : "sm_80", text, len);
}
