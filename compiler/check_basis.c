/* check_basis.c - checks the basis section and the encode() / decode() calls that use it.
 *
 * A basis line is `NAME = method(...)`: pod(x, rank = r, centre = true, samples = K),
 * active_subspace(dq/dm, rank = r, samples = K) or npy(decoder = "D.npy", encoder = "E.npy",
 * shift = "mu.npy"). check_basis reads the lines before the model is checked (so that encode and
 * decode can find their basis by name); resolve_bases gives each its dimension once the model's
 * input and output are known (a basis's source must be a data name: the input, the output or the
 * Jacobian dOUT/dIN); basis_params appends the frozen parameters that carry each used basis
 * through the code generators: encode is the dense layer W = E^T [rank, dim], b = -E^T shift,
 * decode the dense layer W = D [dim, rank], b = shift. The runtime fills them (runtime/basis.c);
 * they sit after every trained parameter, so the optimiser never sees them. */
#include <string.h>

#include "check.h"
#include "functions.h"

const char *const basis_method_names[] = {"pod", "active_subspace", "npy"};

static Basis *basis_find(Checker *c, const char *name) {
    for (int i = 0; i < c->m->n_bases; i++)
        if (strcmp(c->m->bases[i].name, name) == 0) return &c->m->bases[i];
    return NULL;
}

static const char *resolve_file(Checker *c, const char *file) {
    int as_is = file[0] == '/' || !c->opt->spec_dir || strcmp(c->opt->spec_dir, ".") == 0;
    return as_is ? file : arena_printf(c->a, "%s/%s", c->opt->spec_dir, file);
}

/* The shape of a .npy file of npy(...): 0, or -1 after an error at `at`. */
static int file_shape(Checker *c, const char *file, Loc at, const char *what, int64_t *shape, int *ndim) {
    char err[512];
    if (!c->opt->npy_shape) {
        diag_error(c->d, at, "the %s can't be checked here: no .npy reader", what);
        return -1;
    }
    if (c->opt->npy_shape(file, shape, ndim, err, sizeof err)) {
        diag_error(c->d, at, "the %s: %s", what, err);
        return -1;
    }
    return 0;
}

static void check_npy_basis(Checker *c, Basis *b, const Expr *v) {
    static const char *const keys[] = {"decoder", "encoder", "shift"};
    const char **files[] = {&b->decoder, &b->encoder, &b->shift};
    Loc locs[3] = {{0}};
    int given[3] = {0};
    for (int i = 0; i < v->n_args; i++) {
        const Arg *a = &v->args[i];
        int k = -1;
        for (int j = 0; j < 3 && a->name; j++)
            if (strcmp(a->name, keys[j]) == 0) k = j;
        if (k < 0) {
            diag_error(c->d, a->name ? a->name_loc : a->value->loc,
                       "npy() in a basis takes decoder = \"D.npy\", "
                       "encoder = \"E.npy\" and shift = \"mu.npy\"%s",
                       a->name ? did_you_mean(c, a->name, keys, 3) : "");
            continue;
        }
        if (given[k]++) {
            diag_error(c->d, a->name_loc, "argument '%s' given twice", a->name);
            continue;
        }
        const char *f;
        if (want_string(c, a->value, arena_printf(c->a, "the %s file", keys[k]), &f) == 0) {
            *files[k] = resolve_file(c, f);
            locs[k] = a->value->loc;
        }
    }
    if (!b->decoder) {
        if (!given[0]) diag_error(c->d, v->loc, "npy() in a basis needs decoder = \"D.npy\" ([dim, rank])");
        return;
    }
    int64_t shape[8];
    int ndim;
    if (file_shape(c, b->decoder, locs[0], "decoder", shape, &ndim)) return;
    if (ndim != 2 || shape[0] < 1 || shape[1] < 1 || shape[0] > DINO_MAX_DIM || shape[1] > shape[0]) {
        diag_error(c->d, locs[0], "the decoder must be a [dim, rank] matrix with 1 <= rank <= dim");
        return;
    }
    b->dim = (int)shape[0];
    b->rank = (int)shape[1];
    if (b->encoder && file_shape(c, b->encoder, locs[1], "encoder", shape, &ndim) == 0 &&
        (ndim != 2 || shape[0] != b->dim || shape[1] != b->rank))
        diag_error(c->d, locs[1], "the encoder must have the decoder's shape [%d, %d]", b->dim, b->rank);
    if (b->shift && file_shape(c, b->shift, locs[2], "shift", shape, &ndim) == 0 &&
        !(ndim == 1 && shape[0] == b->dim) && !(ndim == 2 && shape[0] == 1 && shape[1] == b->dim))
        diag_error(c->d, locs[2], "the shift must be a vector [%d] (the decoder's dimension)", b->dim);
}

/* pod(x, ...) and active_subspace(dq/dm, ...): the source and the keywords; dim comes later. */
static void check_computed_basis(Checker *c, Basis *b, const Expr *v) {
    int pod = b->method == BASIS_POD;
    const char *usage =
        pod ? "pod(x, rank = r, centre = true, samples = K)" : "active_subspace(dq/dm, rank = r, samples = K)";
    static const char *const pod_keys[] = {"rank", "centre", "samples"};
    static const char *const as_keys[] = {"rank", "samples"};
    const char *const *keys = pod ? pod_keys : as_keys;
    int n_keys = pod ? 3 : 2, n_pos = 0, has_rank = 0;
    b->centre = pod;
    for (int i = 0; i < v->n_args; i++) {
        const Arg *a = &v->args[i];
        if (!a->name) {
            if (n_pos++ > 0) {
                diag_error(c->d, a->value->loc, "%s() takes one data name; usage: %s", v->str, usage);
                continue;
            }
            const Expr *x = a->value;
            if (pod && x->kind == E_NAME) {
                b->source_loc = x->loc;
                b->source_name = x->str;
            } else if (!pod && x->kind == E_BINARY && x->op == '/' && x->lhs->kind == E_NAME &&
                       x->rhs->kind == E_NAME) {
                b->source_loc = x->loc;
                b->source_name = arena_printf(c->a, "%s/%s", x->lhs->str, x->rhs->str);
            } else if (x->kind != E_ERROR) {
                diag_error(c->d, x->loc, "%s",
                           pod ? "pod() needs a data name: the model's input or output"
                               : "active_subspace() needs a Jacobian: dOUT/dIN, as in dq/dm");
            }
            continue;
        }
        int k = -1;
        for (int j = 0; j < n_keys; j++)
            if (strcmp(a->name, keys[j]) == 0) k = j;
        int64_t n;
        if (k < 0) {
            diag_error(c->d, a->name_loc, "%s() has no argument '%s'%s", v->str, a->name,
                       suggest(c, a->name, keys, n_keys, arena_printf(c->a, "; usage: %s", usage)));
        } else if (strcmp(keys[k], "rank") == 0) {
            has_rank = 1;
            b->rank_loc = a->value->loc;
            if (want_int(c, a->value, "the rank", 1, DINO_MAX_DIM, &n) == 0) b->rank = (int)n;
        } else if (strcmp(keys[k], "samples") == 0) {
            if (want_int(c, a->value, "samples", 1, (int64_t)1 << 40, &n) == 0) b->samples = n;
        } else {
            const Expr *e = a->value;
            if (e->kind == E_NAME && (strcmp(e->str, "true") == 0 || strcmp(e->str, "false") == 0))
                b->centre = e->str[0] == 't';
            else diag_error(c->d, e->loc, "centre must be true or false");
        }
    }
    if (n_pos == 0) diag_error(c->d, v->loc, "%s() needs the data it is computed from; usage: %s", v->str, usage);
    if (!has_rank) diag_error(c->d, v->loc, "%s() needs a rank; usage: %s", v->str, usage);
}

void check_basis(Checker *c, const Section *s) {
    Model *m = c->m;
    m->bases = arena_alloc(c->a, sizeof(Basis) * (size_t)(s->n_body ? s->n_body : 1));
    for (int i = 0; i < s->n_body; i++) {
        const Stmt *t = s->body[i];
        if (t->kind == S_ERROR) continue;
        const Expr *target =
            t->kind == S_ASSIGN && t->n_clauses == 1 && t->clauses[0].n_items == 1 ? t->clauses[0].items[0] : NULL;
        if (!target || target->kind != E_NAME) {
            diag_error(c->d, t->loc, "expected NAME = pod(...), active_subspace(...) or npy(...)");
            continue;
        }
        const Expr *v = t->value;
        int method = -1;
        for (int k = 0; k < 3 && v->kind == E_CALL; k++)
            if (strcmp(v->str, basis_method_names[k]) == 0) method = k;
        if (method < 0) {
            if (v->kind == E_CALL)
                diag_error(
                    c->d, v->loc, "unknown basis method '%s'%s", v->str,
                    suggest(c, v->str, basis_method_names, 3,
                            "; a basis is pod(x, rank = r), active_subspace(dq/dm, rank = r) or npy(decoder = ...)"));
            else if (v->kind != E_ERROR)
                diag_error(c->d, v->loc,
                           "a basis is pod(x, rank = r), active_subspace(dq/dm, rank = r) or npy(decoder = ...)");
            continue;
        }
        Basis *old = basis_find(c, target->str);
        if (old) {
            diag_error(c->d, target->loc, "basis '%s' is defined twice", target->str);
            diag_note(c->d, old->loc, "the first definition is here");
            continue;
        }
        if (function_lookup(target->str)) {
            diag_error(c->d, target->loc, "'%s' is a function's name; name the basis otherwise", target->str);
            continue;
        }
        Basis *b = &m->bases[m->n_bases++];
        *b = (Basis){.name = target->str,
                     .loc = target->loc,
                     .call_loc = v->loc,
                     .method = (BasisMethod)method,
                     .enc_param = -1,
                     .dec_param = -1};
        char text[512];
        b->text = arena_strdup(c->a, source_text(c->d->src, t->loc, text, sizeof text));
        if (method == BASIS_NPY) {
            b->source = BASIS_OF_FILES;
            check_npy_basis(c, b, v);
        } else {
            check_computed_basis(c, b, v);
        }
    }
}

/* Once the model's input and output are known: each computed basis's source and dimension. */
void resolve_bases(Checker *c) {
    Model *m = c->m;
    for (int i = 0; i < m->n_bases; i++) {
        Basis *b = &m->bases[i];
        if (b->method == BASIS_NPY || !b->source_name) continue;
        if (b->method == BASIS_POD) {
            if (m->input && strcmp(b->source_name, m->input) == 0) b->source = BASIS_OF_INPUT, b->dim = m->in_dim;
            else if (m->output && strcmp(b->source_name, m->output) == 0)
                b->source = BASIS_OF_OUTPUT, b->dim = m->out_dim;
            else {
                const char *names[] = {m->input, m->output};
                diag_error(c->d, b->source_loc,
                           "pod() is computed from data: '%s' is neither the model's input "
                           "nor its output%s",
                           b->source_name,
                           suggest(c, b->source_name, names, 2,
                                   m->input && m->output ? arena_printf(c->a, " (%s, %s)", m->input, m->output) : ""));
                b->source_name = NULL;
                continue;
            }
        } else {
            const char *want = m->input && m->output ? arena_printf(c->a, "d%s/d%s", m->output, m->input) : NULL;
            if (!want || strcmp(b->source_name, want) != 0) {
                diag_error(c->d, b->source_loc,
                           "active_subspace() is computed from the Jacobian data: '%s' is not "
                           "the model's Jacobian%s",
                           b->source_name, want ? arena_printf(c->a, " (%s)", want) : "");
                b->source_name = NULL;
                continue;
            }
            b->source = BASIS_OF_JACOBIAN;
            b->dim = m->in_dim;
        }
        if (b->dim > 0 && b->rank > b->dim) {
            diag_error(c->d, b->rank_loc, "the rank of basis '%s' must be between 1 and its dimension %d, not %d",
                       b->name, b->dim, b->rank);
            b->rank = 0;
        }
    }
}

/* The rules that need the whole file: labels have no basis; Jacobian data for active_subspace. */
void check_bases_final(Checker *c) {
    Model *m = c->m;
    for (int i = 0; i < m->n_bases; i++) {
        Basis *b = &m->bases[i];
        if (b->source == BASIS_OF_OUTPUT && m->classifier && b->source_name)
            diag_error(c->d, b->source_loc, "'%s' holds class labels (cross_entropy); a basis needs real-valued data",
                       b->source_name);
        if (b->source == BASIS_OF_JACOBIAN && !m->data.jac.kind)
            m->data.jac = (DataSource){.kind = SRC_NPY, .scale = 1, .defaulted = 1, .file = "J_data.npy"};
    }
}

/* ---------------------------------------------------------------------------- encode, decode */

/* The basis named by the call's second argument, or NULL after an error. */
static Basis *basis_arg(Checker *c, Expr *e) {
    const Expr *v = e->args[1].value;
    if (v->kind == E_ERROR) return NULL;
    if (v->kind != E_NAME) {
        diag_error(c->d, v->loc, "the second argument of %s() is the name of a basis", e->str);
        return NULL;
    }
    Basis *b = basis_find(c, v->str);
    if (b) return b;
    const char **names = arena_alloc(c->a, sizeof(char *) * (size_t)(c->m->n_bases + 1));
    for (int i = 0; i < c->m->n_bases; i++) names[i] = c->m->bases[i].name;
    diag_error(c->d, v->loc, "unknown basis '%s'%s", v->str,
               c->m->n_bases ? suggest(c, v->str, names, c->m->n_bases, "; define it in the basis section")
                             : "; define it in a basis section: basis { V = pod(x, rank = r) }");
    return NULL;
}

static int check_coding(Checker *c, Expr *e, Call *k, int enc) {
    int in = check_expr(c, e->args[0].value);
    if (in == 0) {
        diag_error(c->d, e->args[0].value->loc, "the input of %s() must be a tensor, not a constant", e->str);
        return -1;
    }
    Basis *b = basis_arg(c, e);
    if (!b || in < 0) return -1;
    if (b->dim <= 0 || b->rank <= 0) return -1; /* the basis line's error is reported */
    k->basis = (int)(b - c->m->bases);
    int want = enc ? b->dim : b->rank;
    if (in != want) {
        diag_error(c->d, e->args[0].value->loc,
                   enc ? "encode() needs a vector of the basis's dimension: '%s' is "
                         "[%d, %d] (dim, rank), the argument is [%d]"
                       : "decode() needs a vector of the basis's rank: '%s' is "
                         "[%d, %d] (dim, rank), the argument is [%d]",
                   b->name, b->dim, b->rank, in);
        diag_note(c->d, b->loc, "basis '%s' is defined here", b->name);
        return -1;
    }
    if (enc) b->used_encode = 1;
    else b->used_decode = 1;
    return k->out = enc ? b->rank : b->dim;
}

int check_encode(Checker *c, Expr *e, Call *k) { return check_coding(c, e, k, 1); }
int check_decode(Checker *c, Expr *e, Call *k) { return check_coding(c, e, k, 0); }

/* After the model's statements: the frozen parameters of every basis that encode or decode use,
 * after all the trained ones. */
void basis_params(Checker *c) {
    Model *m = c->m;
    for (int i = 0; i < m->n_bases; i++) {
        Basis *b = &m->bases[i];
        for (int enc = 1; enc >= 0; enc--) {
            if (!(enc ? b->used_encode : b->used_decode)) continue;
            int out = enc ? b->rank : b->dim, in = enc ? b->dim : b->rank;
            const char *role = enc ? "encode" : "decode";
            Param *w = arena_alloc(c->a, sizeof *w), *bias = arena_alloc(c->a, sizeof *bias);
            *w = (Param){.name = arena_printf(c->a, "__basis.%s.%s.weight", b->name, role),
                         .ndim = 2,
                         .shape = {out, in},
                         .size = (int64_t)out * in,
                         .fan_in = in,
                         .loc = b->loc,
                         .frozen = 1,
                         .basis = i};
            *bias = (Param){.name = arena_printf(c->a, "__basis.%s.%s.bias", b->name, role),
                            .ndim = 1,
                            .shape = {out, 0},
                            .size = out,
                            .fan_in = in,
                            .loc = b->loc,
                            .frozen = 1,
                            .basis = i};
            if (enc) b->enc_param = c->params.n;
            else b->dec_param = c->params.n;
            ptrvec_push(c->a, &c->params, w);
            ptrvec_push(c->a, &c->params, bias);
        }
    }
}
