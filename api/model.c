/* model.c - dino.h's models: a spec's generated code on a backend (auto, CPU, CUDA), with its
 * parameters; checkpoints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "emit.h"
#include "outputs.h"

/* The CUDA backend, when one is asked for (AUTO, CUDA) and usable. Returns DINO_OK with
 * t->backend set, DINO_OK with t->backend NULL (AUTO: use the CPU; why in md->declined), or a
 * failure (CUDA asked for). */
/* The model's CUDA source and launch plan, for the backend: DINO_CUDA_FUSE (auto, none, tiles)
 * chooses how kernels are grouped and DINO_CUDA_SHARE=0 writes every stage of a tile kernel
 * out, for experiments. NULL with the reason in err. */
static char *cuda_source(const Frontend *fe, JacMode jac, size_t *len, CudaPlan *plan, char *err, size_t errlen) {
    const char *fuse_env = getenv("DINO_CUDA_FUSE");
    int fuse = fuse_env && *fuse_env ? fuse_mode(fuse_env) : FUSE_AUTO;
    if (fuse < 0) {
        snprintf(err, errlen, "DINO_CUDA_FUSE must be auto, none or tiles, not '%s'", fuse_env);
        return NULL;
    }
    const char *share_env = getenv("DINO_CUDA_SHARE");
    EmitOptions eo = {.f64 = fe->model->train.f64,
                      .spec_hash = fe->hash,
                      .fuse = fuse,
                      .no_share = share_env && strcmp(share_env, "0") == 0};
    Arena a = {0};
    char *src = generate_cuda(&a, fe->model, jac, &eo, len, plan, err, errlen);
    arena_free(&a);
    return src;
}

static dino_status open_cuda(dino_model *md, dino_backend want, JacMode jac) {
    const Frontend *fe = &md->spec->fe;
    char err[8192];
    double secs = 0;
    int started = 0;
    if (cuda_available(md->declined, sizeof md->declined)) {
        size_t len = 0;
        CudaPlan plan = {0};
        char *src = cuda_source(fe, jac, &len, &plan, err, sizeof err);
        md->t.backend =
            src ? backend_cuda_new(fe->model, src, len, &plan, md->t.P, &md->t.opt, &secs, err, sizeof err) : NULL;
        free(src);
        cuda_plan_free(&plan);
        if (md->t.backend) {
            if (md->t.backend->note[0] && md->opts.on_message)
                md->opts.on_message(DINO_MESSAGE_NOTE, md->t.backend->note, md->opts.user);
            md->kind = DINO_BACKEND_CUDA;
            md->declined[0] = 0;
            return DINO_OK;
        }
        snprintf(md->declined, sizeof md->declined, "%s", err);
        started = 1; /* a GPU is there; the backend failed on it */
    }
    if (want == DINO_BACKEND_CUDA)
        return api_fail(DINO_EUSER, 0, started ? "the CUDA backend could not start: %s" : "no usable GPU: %s",
                        md->declined);
    md->gpu_failed = started;
    return DINO_OK;
}

/* The CPU backend: the generated C, compiled (or from the cache) and loaded. */
static dino_status open_cpu(dino_model *md, JacMode jac) {
    Frontend *fe = &md->spec->fe;
    const Model *m = fe->model;
    char err[8192];
    size_t len;
    char *src = generate_c(&fe->arena, m, jac, m->train.f64, fe->hash, &len, err, sizeof err);
    if (!src) return api_fail(DINO_EUSER, 1, "%s", err);
    int bad = cpu_module_load(src, len, &md->mod, err, sizeof err);
    free(src);
    if (bad) return api_fail(DINO_EUSER, 0, "%s", err);
    if (md->mod.note[0] && md->opts.on_message) md->opts.on_message(DINO_MESSAGE_NOTE, md->mod.note, md->opts.user);
    md->t.backend = backend_cpu_new(&md->mod, m, md->t.P, &md->t.opt, err, sizeof err);
    if (!md->t.backend) return api_fail(DINO_EUSER, 0, "%s", err);
    md->kind = DINO_BACKEND_CPU;
    md->from_cache = !(md->mod.compile_seconds > 0);
    return DINO_OK;
}

static dino_status dino_model_open_unguarded(dino_spec *spec, const dino_open_options *opts, dino_model **out);

dino_status dino_model_open(dino_spec *spec, const dino_open_options *opts, dino_model **out) {
    API_GUARDED(dino_model_open_unguarded(spec, opts, out));
}

static dino_status dino_model_open_unguarded(dino_spec *spec, const dino_open_options *opts, dino_model **out) {
    static const dino_open_options defaults = {0};
    if (!opts) opts = &defaults;
    *out = NULL;
    if (!spec || !spec->ok) return api_fail(DINO_EUSER, 0, "the spec has errors");
    if ((unsigned)opts->backend > DINO_BACKEND_CUDA) return api_fail(DINO_EUSER, 0, "no such backend");
    Model *m = spec->fe.model;
    if (opts->precision != DINO_PRECISION_SPEC) m->train.f64 = opts->precision == DINO_PRECISION_F64;
    dino_model *md = calloc(1, sizeof *md);
    if (!md) return api_fail(DINO_EINTERNAL, 0, "out of memory");
    md->spec = spec;
    md->opts = *opts;
    char err[4096];
    int rc = trainer_init(&md->t, m, spec->fe.hash, err, sizeof err);
    if (rc) {
        trainer_free(&md->t);
        free(md);
        return api_fail(rc, 0, "%s", err);
    }
    JacMode jac = api_jac_mode(opts->jacobian);
    dino_status st = DINO_OK;
    if (opts->backend != DINO_BACKEND_CPU) st = open_cuda(md, opts->backend, jac);
    if (st == DINO_OK && !md->t.backend) st = open_cpu(md, jac);
    if (st) {
        dino_model_free(md);
        return st;
    }
    *out = md;
    return DINO_OK;
}

void dino_model_free(dino_model *md) {
    if (!md) return;
    reduced_free(md);
    trainer_free(&md->t);
    if (md->mod.handle) cpu_module_free(&md->mod);
    free(md->conv);
    free(md);
}

dino_status dino_model_backend(const dino_model *md, dino_backend_info *info) {
    *info = (dino_backend_info){.backend = md->kind,
                                .name = md->t.backend->name,
                                .gpu_declined = md->declined,
                                .gpu_failed = md->gpu_failed,
                                .from_cache = md->from_cache,
                                .f64 = md->t.f64};
    return DINO_OK;
}

dino_status dino_model_progress(const dino_model *md, long long *epochs_done, long long *steps_done) {
    if (epochs_done) *epochs_done = md->t.state.epoch;
    if (steps_done) *steps_done = md->t.state.step;
    return DINO_OK;
}

void dino_request_stop(dino_model *md) { md->stop = 1; }

/* ---------------------------------------------------------------------------- checkpoints */

dino_status dino_model_save(dino_model *md, const char *path) {
    Trainer *t = &md->t;
    char err[4200];
    if (!path || output_prepare(path, "checkpoint", err, sizeof err))
        return api_fail(DINO_EUSER, 0, "%s", path ? err : "no checkpoint path");
    int rc = t->backend->pull(t->backend);
    if (rc) return api_fail(rc, 0, "%s", t->backend->err);
    if (checkpoint_save_bases(path, t->m, t->P, t->f64, &t->opt, &t->state, t->spec_hash, &t->bases, err, sizeof err))
        return api_fail(DINO_EUSER, 0, "%s", err);
    return DINO_OK;
}

dino_status dino_model_load(dino_model *md, const char *path, dino_checkpoint_info *info) {
    Trainer *t = &md->t;
    char err[1024];
    int matches = -1;
    if (checkpoint_load_bases(path, t->m, t->P, t->f64, &t->opt, &t->state, t->spec_hash, &matches, &t->bases, err,
                              sizeof err))
        return api_fail(DINO_EUSER, 0, "%s", err);
    basis_fill_params(t->m, &t->bases, t->P, t->f64); /* the frozen layers of the bases it held, used as saved */
    if (t->state.has_state) rng_restore(&t->rng, t->state.rng);
    int rc = t->backend->push(t->backend);
    if (rc) return api_fail(rc, 0, "%s", t->backend->err);
    if (info)
        *info =
            (dino_checkpoint_info){.has_state = t->state.has_state, .epoch = t->state.epoch, .spec_matches = matches};
    return DINO_OK;
}
