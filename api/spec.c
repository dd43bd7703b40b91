/* spec.c - dino.h's specs: load, parse and check; diagnostics as data and as text; settings.
 *
 * The steps are frontend_run's (compiler/frontend.c), with the diagnostics printed into memory
 * and also recorded one by one (Diag's sink). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "npy.h"
#include "parse.h"

/* Diag's sink: one recorded diagnostic, its strings in the spec's arena. */
static void record(void *user, const char *kind, Loc loc, const char *msg) {
    dino_spec *s = user;
    if (s->n_diags == s->cap_diags) {
        size_t cap = s->cap_diags ? 2 * s->cap_diags : 16;
        dino_diagnostic *d = realloc(s->diags, cap * sizeof *d);
        if (!d) return; /* the text still has it */
        s->diags = d;
        s->cap_diags = cap;
    }
    s->diags[s->n_diags++] =
        (dino_diagnostic){.file = s->fe.src.path,
                          .line = loc.line,
                          .col = loc.col,
                          .end_line = loc.end_line,
                          .end_col = loc.end_col,
                          .severity = strcmp(kind, "note") == 0 ? DINO_SEVERITY_NOTE : DINO_SEVERITY_ERROR,
                          .message = arena_strdup(&s->fe.arena, msg)};
}

/* Parses and checks s->fe.src (loaded), printing diagnostics into out. */
static void check_source(dino_spec *s, FILE *out) {
    Frontend *fe = &s->fe;
    const char *path = fe->src.path;
    fe->hash = hash_bytes(fe->src.text, fe->src.len, HASH_START);
    diag_init(&fe->diag, &fe->src, out);
    fe->diag.sink = record;
    fe->diag.sink_user = s;
    fe->ast = parse_source(&fe->arena, &fe->diag, &fe->src);
    if (fe->diag.n_errors == 0) {
        const char *slash = strrchr(path, '/');
        fe->spec_dir = slash ? arena_strndup(&fe->arena, path, (size_t)(slash - path + (slash == path))) : ".";
        CheckOptions opt = {.spec_dir = fe->spec_dir, .npy_shape = npy_shape};
        fe->model = check_file(&fe->arena, &fe->diag, fe->ast, &opt);
    }
    diag_summary(&fe->diag);
    s->ok = fe->diag.n_errors == 0 && fe->model;
    if (s->ok && fe->model->data.dir) {
        const char *dir = fe->model->data.dir;
        s->data_dir =
            dir[0] == '/' ? arena_strdup(&fe->arena, dir) : arena_printf(&fe->arena, "%s/%s", fe->spec_dir, dir);
    }
}

/* From a file (text NULL) or from memory: the common part of the two entry points. */
static dino_status spec_open(const char *path, const char *text, size_t len, dino_spec **out) {
    *out = NULL;
    dino_spec *s = calloc(1, sizeof *s);
    if (!s) return api_fail(DINO_EINTERNAL, 0, "out of memory");
    FILE *f = open_memstream(&s->text, &s->text_len);
    if (!f) {
        free(s);
        return api_fail(DINO_EINTERNAL, 0, "out of memory");
    }
    path = arena_strdup(&s->fe.arena, path);
    char err[512];
    if (text) {
        source_from_text(&s->fe.src, path, text, len);
        check_source(s, f);
    } else if (source_load(&s->fe.src, path, err, sizeof err)) {
        fprintf(f, "%s: error: %s\n", path, err);
        record(s, "error", (Loc){0}, err);
        s->fe.diag.n_errors = 1;
    } else {
        check_source(s, f);
    }
    fclose(f);
    *out = s;
    if (s->ok) return DINO_OK;
    /* the message of the failure: the diagnostics as printed, without the last newline */
    return api_fail(DINO_EUSER, 1, "%.*s",
                    (int)(s->text_len && s->text[s->text_len - 1] == '\n' ? s->text_len - 1 : s->text_len), s->text);
}

dino_status dino_spec_load(const char *path, dino_spec **spec) {
    if (!path) {
        *spec = NULL;
        return api_fail(DINO_EUSER, 0, "no spec file given");
    }
    API_GUARDED(spec_open(path, NULL, 0, spec));
}

dino_status dino_spec_from_text(const char *name, const char *text, size_t len, dino_spec **spec) {
    API_GUARDED(spec_open(name ? name : "<text>", text ? text : "", text ? len : 0, spec));
}

void dino_spec_free(dino_spec *spec) {
    if (!spec) return;
    frontend_free(&spec->fe);
    for (int i = 0; i < spec->n_data_files; i++) free(spec->data_files[i]);
    free(spec->diags);
    free(spec->text);
    free(spec);
}

size_t dino_spec_diagnostic_count(const dino_spec *spec) { return spec->n_diags; }

const dino_diagnostic *dino_spec_diagnostic(const dino_spec *spec, size_t i) {
    return i < spec->n_diags ? &spec->diags[i] : NULL;
}

int dino_spec_error_count(const dino_spec *spec) { return spec->fe.diag.n_errors; }

const char *dino_spec_diagnostics_text(const dino_spec *spec) { return spec->text ? spec->text : ""; }

static dino_status need_checked(const dino_spec *spec) {
    if (!spec) return api_fail(DINO_EUSER, 0, "no spec");
    if (!spec->ok) return api_fail(DINO_EUSER, 0, "the spec %s has errors", spec->fe.src.path);
    return DINO_OK;
}

dino_status dino_spec_info_get(const dino_spec *spec, dino_spec_info *info) {
    dino_status st = need_checked(spec);
    if (st) return st;
    const Model *m = spec->fe.model;
    *info = (dino_spec_info){.name = m->name,
                             .input = m->input,
                             .output = m->output,
                             .in_dim = m->in_dim,
                             .out_dim = m->out_dim,
                             .n_params = model_trainable(m),
                             .classifier = m->classifier,
                             .out_times = m->trajectory ? m->out_rows : 0,
                             .out_step = m->out_cols,
                             .f64 = m->train.f64,
                             .epochs = m->train.epochs,
                             .batch = m->train.batch,
                             .hash = spec->fe.hash,
                             .data_dir = spec->data_dir};
    return DINO_OK;
}

/* ---------------------------------------------------------------------------- settings */

/* The train section's own rules, ranges and messages (check_setting, check_sections.c). */
dino_status dino_spec_set(dino_spec *spec, const char *key, const char *val) {
    dino_status st = need_checked(spec);
    if (st) return st;
    char msg[512];
    if (check_setting(&spec->fe.model->train, key, val, msg, sizeof msg)) return api_fail(DINO_EUSER, 0, "%s", msg);
    return DINO_OK;
}
