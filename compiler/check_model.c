/* check_model.c - checks the model section: names, dimensions, layers, parameters, ODE blocks.
 *
 * Statements are checked in order with single assignment: every name is defined once and used
 * only after its definition. Each expression gets its per-sample dimension (0 for a constant
 * scalar); each layer call gets a Call record and its parameters, named by the rules in
 * docs/language.md. An ODE block opens a scope in which the state and the time are visible;
 * its local names go out of scope at the end of the block, and the state name then means the
 * final state. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "ops.h"

/* ---------------------------------------------------------------------------- parameters */

static const int64_t MAX_WEIGHTS = (int64_t)1 << 40;   /* parameters in a model: 4 TiB in f32 */
enum { MAX_MLP_DEPTH = 1000 };     /* hidden layers of one mlp */
enum { MAX_SLICES = 100000 };      /* Parareal time slices */

static Param *add_param(Checker *c, const char *name, int ndim, int out, int in, Loc loc) {
    Param *p = arena_alloc(c->a, sizeof *p);
    p->name = name;
    p->ndim = ndim;
    p->shape[0] = out;
    p->shape[1] = ndim == 2 ? in : 0;
    p->size = ndim == 2 ? (int64_t)out * in : out;
    p->fan_in = in;
    p->loc = loc;
    ptrvec_push(c->a, &c->params, p);
    return p;
}

/* Names the parameters of the statement just checked: `prefix.weight` when it has one dense
 * layer, `prefix.K.weight` (K in evaluation order) when it has several or an mlp. */
static void name_layers(Checker *c, const char *prefix) {
    int n_layers = 0;
    for (int i = 0; i < c->layers.n; i++) {
        const Call *k = ((Expr *)c->layers.items[i])->call;
        n_layers += k->kind == FN_MLP ? k->depth + 1 : 1;
    }
    int numbered = n_layers > 1 || (n_layers == 1 && ((Expr *)c->layers.items[0])->call->kind == FN_MLP);
    int layer = 0;
    for (int i = 0; i < c->layers.n; i++) {
        Expr *e = c->layers.items[i];
        Call *k = e->call;
        int in = e->args[0].value->dim;
        k->first_param = c->params.n;
        e->param = c->params.n;
        int n = k->kind == FN_MLP ? k->depth + 1 : 1;
        for (int j = 0; j < n; j++, layer++) {
            int out = k->kind == FN_MLP && j < k->depth ? k->widths[j] : k->out;
            const char *base = numbered ? arena_printf(c->a, "%s.%d", prefix, layer) : prefix;
            add_param(c, arena_printf(c->a, "%s.weight", base), 2, out, in, e->loc);
            if (k->bias) add_param(c, arena_printf(c->a, "%s.bias", base), 1, out, in, e->loc);
            in = out;
        }
    }
    c->layers.n = 0;
}

/* ---------------------------------------------------------------------------- expressions */

static int check_expr(Checker *c, Expr *e);

static const char *const function_names[] = {
    "dense", "mlp", "concat", "project",
#define X(name, doc) #name,
    DINO_ACTIVATIONS(X)
#undef X
};
enum { N_FUNCTIONS = sizeof function_names / sizeof function_names[0] };

/* "relu, tanh, ..., sin" */
static const char *activation_list(Checker *c) {
    const char *list = activation_names[0];
    for (int i = 1; i < ACT_COUNT; i++) list = arena_printf(c->a, "%s, %s", list, activation_names[i]);
    return list;
}

/* A vector argument: any expression with a dimension (not a constant). */
static int vector_arg(Checker *c, Expr *call, int i, const char *what) {
    Expr *x = call->args[i].value;
    int dim = check_expr(c, x);
    if (dim == 0) {
        diag_error(c->d, x->loc, "%s of %s() must be a tensor, not a constant", what, call->str);
        return -1;
    }
    return dim;
}

/* Positional count and allowed keywords (at most 8) of a call; reports every misplaced
 * argument. Linear in the number of arguments, however many a hostile file gives. */
static int check_arity(Checker *c, Expr *e, int min_pos, int max_pos, const char *const *keys, int n_keys,
                       const char *usage) {
    int ok = 1, n_pos = 0;
    const Arg *given[8] = {0};   /* the first use of each known keyword */
    for (int i = 0; i < e->n_args; i++) {
        const Arg *a = &e->args[i];
        if (!a->name) {
            if (n_pos < i) {
                diag_error(c->d, a->value->loc, "positional argument after a keyword argument in %s()", e->str);
                ok = 0;
            }
            n_pos++;
            continue;
        }
        int known = -1;
        for (int k = 0; k < n_keys && k < 8; k++)
            if (strcmp(keys[k], a->name) == 0) known = k;
        if (known >= 0 && given[known]) {
            diag_error(c->d, a->name_loc, "argument '%s' given twice", a->name);
            ok = 0;
        } else if (known >= 0) {
            given[known] = a;
        } else {
            diag_error(c->d, a->name_loc, "%s() has no argument '%s'%s", e->str, a->name,
                       suggest(c, a->name, keys, n_keys, arena_printf(c->a, "; usage: %s", usage)));
            ok = 0;
        }
    }
    if (n_pos < min_pos || n_pos > max_pos) {
        diag_error(c->d, e->loc, "%s() takes %s%d positional argument%s, got %d; usage: %s", e->str,
                   min_pos == max_pos ? "" : "at least ", min_pos, min_pos == 1 ? "" : "s", n_pos, usage);
        ok = 0;
    }
    return ok ? 0 : -1;
}

static const Expr *keyword(const Expr *e, const char *key) {
    for (int i = 0; i < e->n_args; i++)
        if (e->args[i].name && strcmp(e->args[i].name, key) == 0) return e->args[i].value;
    return NULL;
}

static int want_bool(Checker *c, const Expr *e, const char *what, int *out) {
    if (e->kind == E_NAME && (strcmp(e->str, "true") == 0 || strcmp(e->str, "false") == 0)) {
        *out = e->str[0] == 't';
        return 0;
    }
    diag_error(c->d, e->loc, "%s must be true or false", what);
    return -1;
}

static int check_dense(Checker *c, Expr *e, Call *k) {
    static const char *const keys[] = {"bias"};
    if (check_arity(c, e, 2, 2, keys, 1, "dense(x, n, bias = true)")) return -1;
    int in = vector_arg(c, e, 0, "the input");
    int64_t n;
    int bad = want_int(c, e->args[1].value, "the size of dense()", 1, DINO_MAX_DIM, &n);
    k->bias = 1;
    const Expr *b = keyword(e, "bias");
    if (b && want_bool(c, b, "bias", &k->bias)) bad = 1;
    if (bad) return -1;
    k->out = (int)n;
    if (in < 0) return k->out;   /* the input's error is reported; the output size is still known */
    ptrvec_push(c->a, &c->layers, e);
    return k->out;
}

static int check_mlp(Checker *c, Expr *e, Call *k) {
    static const char *const keys[] = {"width", "depth", "widths", "act", "residual", "bias"};
    const char *usage = "mlp(x, n, width = w, depth = d, act = gelu, residual = false) or widths = [..]";
    if (check_arity(c, e, 2, 2, keys, 6, usage)) return -1;
    int in = vector_arg(c, e, 0, "the input");
    int64_t n;
    int bad = want_int(c, e->args[1].value, "the size of mlp()", 1, DINO_MAX_DIM, &n);
    const Expr *width = keyword(e, "width"), *depth = keyword(e, "depth"), *widths = keyword(e, "widths");
    if (widths && (width || depth)) {
        diag_error(c->d, widths->loc, "give either widths = [...] or width and depth, not both");
        return -1;
    }
    if (widths) {
        if (widths->kind != E_LIST || widths->n_args == 0) {
            diag_error(c->d, widths->loc, "widths must be a non-empty list of sizes, e.g. [256, 128]");
            return -1;
        }
        if (widths->n_args > MAX_MLP_DEPTH) {
            diag_error(c->d, widths->loc, "widths lists %d hidden layers; an mlp has at most %d", widths->n_args,
                       MAX_MLP_DEPTH);
            return -1;
        }
        k->depth = widths->n_args;
        k->widths = arena_alloc(c->a, sizeof(int) * (size_t)k->depth);
        for (int i = 0; i < k->depth; i++) {
            int64_t w;
            if (want_int(c, widths->args[i].value, "a width", 1, DINO_MAX_DIM, &w)) bad = 1;
            else k->widths[i] = (int)w;
        }
    } else if (!width || !depth) {
        diag_error(c->d, e->loc, "mlp() needs width and depth (or widths); usage: %s", usage);
        return -1;
    } else {
        int64_t w, d;
        if (want_int(c, width, "width", 1, DINO_MAX_DIM, &w) | want_int(c, depth, "depth", 1, MAX_MLP_DEPTH, &d))
            return -1;
        k->depth = (int)d;
        k->widths = arena_alloc(c->a, sizeof(int) * (size_t)k->depth);
        for (int i = 0; i < k->depth; i++) k->widths[i] = (int)w;
    }
    k->act = ACT_gelu;
    const Expr *act = keyword(e, "act");
    if (act) {
        if (act->kind != E_NAME || activation_lookup(act->str) < 0) {
            const char *name = act->kind == E_NAME ? act->str : "";
            diag_error(c->d, act->loc, "unknown activation%s%s%s", act->kind == E_NAME ? " '" : "",
                       act->kind == E_NAME ? arena_printf(c->a, "%s'", name) : "",
                       suggest(c, name, activation_names, ACT_COUNT, arena_printf(c->a, "; the activations are %s", activation_list(c))));
            bad = 1;
        } else {
            k->act = activation_lookup(act->str);
        }
    }
    const Expr *res = keyword(e, "residual"), *bias = keyword(e, "bias");
    if (res && want_bool(c, res, "residual", &k->residual)) bad = 1;
    k->bias = 1;
    if (bias && want_bool(c, bias, "bias", &k->bias)) bad = 1;
    if (bad) return -1;
    k->out = (int)n;
    if (in < 0) return k->out;   /* the input's error is reported; the output size is still known */
    ptrvec_push(c->a, &c->layers, e);
    return k->out;
}

static int check_concat(Checker *c, Expr *e, Call *k) {
    if (check_arity(c, e, 1, 1 << 20, NULL, 0, "concat(a, b, ...)")) return -1;
    int64_t total = 0;
    int bad = 0;
    for (int i = 0; i < e->n_args; i++) {
        int d = vector_arg(c, e, i, "an argument");
        if (d < 0) bad = 1;
        else total += d;
    }
    if (bad) return -1;
    if (total > DINO_MAX_DIM) {
        diag_error(c->d, e->loc, "concat() result has dimension %lld, more than %d", (long long)total, DINO_MAX_DIM);
        return -1;
    }
    k->out = (int)total;
    return k->out;
}

static int check_project(Checker *c, Expr *e, Call *k) {
    if (check_arity(c, e, 2, 2, NULL, 0, "project(x, \"P.npy\")")) return -1;
    int in = vector_arg(c, e, 0, "the input");
    const char *file;
    if (want_string(c, e->args[1].value, "the matrix file of project()", &file) || in < 0) return -1;
    int as_is = file[0] == '/' || !c->opt->spec_dir || strcmp(c->opt->spec_dir, ".") == 0;
    k->file = as_is ? file : arena_printf(c->a, "%s/%s", c->opt->spec_dir, file);
    if (!c->opt->npy_shape) {
        diag_error(c->d, e->args[1].value->loc, "project() can't be checked here: no .npy reader");
        return -1;
    }
    int64_t shape[8];
    int ndim;
    char err[512];
    if (c->opt->npy_shape(k->file, shape, &ndim, err, sizeof err)) {
        diag_error(c->d, e->args[1].value->loc, "the matrix of project(): %s", err);
        return -1;
    }
    if (ndim != 2 || shape[1] != in || shape[0] < 1 || shape[0] > DINO_MAX_DIM) {
        char got[64] = "";
        int len = 0;
        for (int i = 0; i < ndim && len < 50; i++)
            len += snprintf(got + len, sizeof got - (size_t)len, "%s%lld", i ? ", " : "", (long long)shape[i]);
        diag_error(c->d, e->args[1].value->loc, "project() matrix '%s' has shape [%s]; expected [n, %d] for an input of dimension %d",
                   file, got, in, in);
        return -1;
    }
    k->out = (int)shape[0];
    return k->out;
}

static int check_call(Checker *c, Expr *e) {
    Call *k = arena_alloc(c->a, sizeof *k);
    e->call = k;
    int act = activation_lookup(e->str);
    if (act >= 0) {
        k->kind = FN_ACT;
        k->act = act;
        if (check_arity(c, e, 1, 1, NULL, 0, arena_printf(c->a, "%s(x)", e->str))) return -1;
        return k->out = vector_arg(c, e, 0, "the argument");
    }
    if (strcmp(e->str, "dense") == 0) return k->kind = FN_DENSE, check_dense(c, e, k);
    if (strcmp(e->str, "mlp") == 0) return k->kind = FN_MLP, check_mlp(c, e, k);
    if (strcmp(e->str, "concat") == 0) return k->kind = FN_CONCAT, check_concat(c, e, k);
    if (strcmp(e->str, "project") == 0) return k->kind = FN_PROJECT, check_project(c, e, k);
    diag_error(c->d, e->loc, "unknown function '%s'%s", e->str,
               suggest(c, e->str, function_names, N_FUNCTIONS,
                       arena_printf(c->a, "; the functions are dense, mlp, concat, project and the activations %s",
                                    activation_list(c))));
    return -1;
}

static const char *describe_dim(Checker *c, int dim) {
    return dim == 0 ? "a constant" : arena_printf(c->a, "[%d]", dim);
}

static int check_binary(Checker *c, Expr *e) {
    int a = check_expr(c, e->lhs), b = check_expr(c, e->rhs);
    if (a < 0 || b < 0) return -1;
    switch (e->op) {
    case '+':
    case '-':
        if (a == b || a == 0 || b == 0) return a > b ? a : b;
        diag_error(c->d, e->loc, "'%c' needs equal dimensions, got %s %c %s", e->op,
                   describe_dim(c, a), e->op, describe_dim(c, b));
        return -1;
    case '*':
        if (a == b || a <= 1 || b <= 1) return a > b ? a : b;
        diag_error(c->d, e->loc, "'*' needs equal dimensions or a scalar side, got %s * %s",
                   describe_dim(c, a), describe_dim(c, b));
        return -1;
    default: /* '/' */
        if (b == 0) {
            if (e->rhs->kind == E_NUM && e->rhs->num == 0) {
                diag_error(c->d, e->rhs->loc, "division by zero");
                return -1;
            }
            return a;
        }
        diag_error(c->d, e->rhs->loc, "'/' can only divide by a constant, not by a tensor %s", describe_dim(c, b));
        return -1;
    }
}

/* Finds a model statement after the one being checked that defines `name` (the target of an
 * assignment or an ode state): 1 and its location, or 0. Only used to explain an error. */
static int later_definition(Checker *c, const char *name, Loc *where) {
    for (int i = c->stmt_index + 1; i < c->m->n_body; i++) {
        const Stmt *t = c->m->body[i];
        const Expr *target = t->kind == S_ASSIGN && t->n_clauses == 1 && t->clauses[0].n_items == 1
                                 ? t->clauses[0].items[0] : NULL;
        if (target && target->kind == E_NAME && strcmp(target->str, name) == 0) {
            *where = target->loc;
            return 1;
        }
        if (t->kind == S_ODE && strcmp(t->name, name) == 0) {
            *where = t->name_loc;
            return 1;
        }
    }
    return 0;
}

static int check_name(Checker *c, Expr *e) {
    Sym *s = sym_find(&c->syms, e->str);
    Loc later;
    if (s && s->kind != SYM_HIDDEN) return s->dim;
    if (s) {
        diag_error(c->d, e->loc, "'%s' is local to an ode block and not visible here", e->str);
        diag_note(c->d, s->loc, "'%s' is defined here", e->str);
    } else if (activation_lookup(e->str) >= 0 || strcmp(e->str, "dense") == 0 || strcmp(e->str, "mlp") == 0) {
        diag_error(c->d, e->loc, "'%s' is a function; call it, as in %s(x)", e->str, e->str);
    } else if (c->d->n_errors >= DIAG_MAX_ERRORS) {
        diag_error(c->d, e->loc, "unknown name '%s'", e->str);   /* not shown: no time on explanations */
    } else if (later_definition(c, e->str, &later)) {
        diag_error(c->d, e->loc, "'%s' is used before it is defined", e->str);
        diag_note(c->d, later, "'%s' is defined here", e->str);
    } else if (c->m->output && strcmp(e->str, c->m->output) == 0) {
        diag_error(c->d, e->loc, "'%s' is the model output; it has no value until it is assigned", e->str);
    } else {
        /* Suggest among the names defined so far. */
        const char **names = arena_alloc(c->a, sizeof(char *) * (size_t)(c->syms.cap + 1));
        int n = 0;
        for (int i = 0; i < c->syms.cap; i++)
            if (c->syms.slots[i].name && c->syms.slots[i].kind != SYM_HIDDEN) names[n++] = c->syms.slots[i].name;
        const char *best = closest_name(e->str, names, n);
        diag_error(c->d, e->loc, "unknown name '%s'%s", e->str,
                   best ? arena_printf(c->a, "; did you mean '%s'?", best) : "");
    }
    return -1;
}

/* Returns the expression's dimension (0 for a constant scalar), or -1 after an error. */
static int check_expr(Checker *c, Expr *e) {
    int dim = -1;
    switch (e->kind) {
    case E_NUM: dim = 0; break;
    case E_NAME: dim = check_name(c, e); break;
    case E_CALL: dim = check_call(c, e); break;
    case E_BINARY: dim = check_binary(c, e); break;
    case E_NEG: dim = check_expr(c, e->lhs); break;
    case E_STR: diag_error(c->d, e->loc, "a string is not a tensor"); break;
    case E_LIST: diag_error(c->d, e->loc, "a list is not a tensor"); break;
    case E_ERROR: break;
    }
    e->dim = dim > 0 ? dim : 0;
    return dim;
}

/* ---------------------------------------------------------------------------- statements */

static int define(Checker *c, const char *name, Loc loc, int dim, SymKind kind) {
    Sym *s = sym_find(&c->syms, name);
    if (s && s->kind == SYM_HIDDEN) {   /* a local of an earlier ode block, out of scope: free again */
        *s = (Sym){name, dim, kind, loc};
        return 0;
    }
    if (s) {
        diag_error(c->d, loc, "'%s' is already defined; each name is assigned once", name);
        diag_note(c->d, s->loc, "'%s' was defined here", name);
        return -1;
    }
    if (activation_lookup(name) >= 0 || strcmp(name, "dense") == 0 || strcmp(name, "mlp") == 0 ||
        strcmp(name, "concat") == 0 || strcmp(name, "project") == 0) {
        diag_error(c->d, loc, "'%s' is the name of a function; choose another name", name);
        return -1;
    }
    sym_add(c, name, dim, kind, loc);
    return 0;
}

/* The single name on the left of `name = ...`, or NULL after an error. */
static const Expr *assign_target(Checker *c, const Stmt *s, const char *where) {
    const Clause *cl = &s->clauses[0];
    if (s->n_clauses == 1 && cl->n_items == 1 && cl->items[0]->kind == E_NAME) return cl->items[0];
    diag_error(c->d, cl->loc, "the left side of an assignment %s must be a single name", where);
    return NULL;
}

static void check_assign(Checker *c, const Stmt *s, const char *prefix, SymKind kind) {
    const Expr *t = assign_target(c, s, "in a model");
    int dim = check_expr(c, s->value);
    if (!t) return;
    if (dim == 0) {
        diag_error(c->d, s->value->loc, "'%s' would be a constant; a model statement must compute a tensor", t->str);
        dim = -1;
    }
    if (dim > 0) name_layers(c, prefix ? arena_printf(c->a, "%s.%s", prefix, t->str) : t->str);
    c->layers.n = 0;
    define(c, t->str, t->loc, dim, kind);   /* dim -1: uses of the name stay silent */
}

static int solver_lookup(const char *name) {
    for (int i = 0; i < SOLVER_COUNT; i++)
        if (strcmp(solver_names[i], name) == 0) return i;
    return -1;
}

/* `euler steps 4`, `rk4 steps 8`, `dopri5 rtol 1e-6 atol 1e-8 max_steps 500` from items[from..]. */
static int parse_solver(Checker *c, const Clause *cl, int from, Solver *out, int fixed_only) {
    out->loc = cl->loc;
    if (from >= cl->n_items) {
        diag_error(c->d, cl->loc, "missing solver: euler, midpoint, rk4 or dopri5");
        return -1;
    }
    const char *name;
    if (want_name(c, cl->items[from], "the solver", &name)) return -1;
    int kind = solver_lookup(name);
    if (kind < 0) {
        diag_error(c->d, cl->items[from]->loc, "unknown solver '%s'%s", name,
                   suggest(c, name, solver_names, SOLVER_COUNT, "; the solvers are euler, midpoint, rk4 and dopri5"));
        return -1;
    }
    if (fixed_only && kind == SOLVER_DOPRI5) {
        diag_error(c->d, cl->items[from]->loc, "Parareal propagators need a fixed-step solver (euler, midpoint or rk4)");
        return -1;
    }
    out->kind = kind;
    out->steps = kind == SOLVER_DOPRI5 ? 10 : 0;
    out->rtol = 1e-6;
    out->atol = 1e-8;
    out->max_steps = 1000;
    static const char *const fixed_keys[] = {"steps"};
    static const char *const adaptive_keys[] = {"steps", "rtol", "atol", "max_steps"};
    int bad = 0;
    for (int i = from + 1; i < cl->n_items; i += 2) {
        const char *key;
        if (want_name(c, cl->items[i], "a solver setting", &key)) return -1;
        const char *const *keys = kind == SOLVER_DOPRI5 ? adaptive_keys : fixed_keys;
        int n_keys = kind == SOLVER_DOPRI5 ? 4 : 1;
        if (i + 1 >= cl->n_items) {
            diag_error(c->d, cl->items[i]->loc, "'%s' needs a value", key);
            return -1;
        }
        const Expr *v = cl->items[i + 1];
        int64_t n;
        if (strcmp(key, "steps") == 0) {
            bad |= want_int(c, v, "steps", 1, 1000000, &n);
            out->steps = (int)n;
        } else if (kind == SOLVER_DOPRI5 && strcmp(key, "max_steps") == 0) {
            bad |= want_int(c, v, "max_steps", 1, 1000000, &n);
            out->max_steps = (int)n;
        } else if (kind == SOLVER_DOPRI5 && (strcmp(key, "rtol") == 0 || strcmp(key, "atol") == 0)) {
            double x = 0;
            bad |= want_number(c, v, key, &x);
            if (!bad && !(x > 0)) {
                diag_error(c->d, v->loc, "%s must be positive", key);
                bad = 1;
            }
            *(key[0] == 'r' ? &out->rtol : &out->atol) = x;
        } else {
            diag_error(c->d, cl->items[i]->loc, "%s has no setting '%s'%s", name, key, did_you_mean(c, key, keys, n_keys));
            return -1;
        }
    }
    if (bad) return -1;
    if (kind != SOLVER_DOPRI5 && out->steps == 0) {
        diag_error(c->d, cl->loc, "a fixed-step solver needs its number of steps: %s steps N", name);
        return -1;
    }
    return 0;
}

/* `checkpoint N`: segments of N steps of a serial fixed-step solve (lower.c, recompute.c). */
static void check_checkpoint(Checker *c, const OdeBlock *o) {
    if (!o->checkpoint) return;
    if (o->solver.loc.line && o->solver.kind == SOLVER_DOPRI5)
        diag_error(c->d, o->checkpoint_loc, "checkpoint is for the fixed-step solvers (euler, midpoint, rk4), not dopri5");
    else if (o->pint.present)
        diag_error(c->d, o->checkpoint_loc, "checkpoint cannot be combined with a pint block yet; Parareal stores its iterations");
    else if (o->solver.loc.line && o->checkpoint >= o->solver.steps)
        diag_error(c->d, o->checkpoint_loc,
                   "checkpoint %d keeps nothing out of %d steps: N must be below the number of steps (memory is "
                   "about steps / N stored states plus N steps' values; dino-jit prints the training workspace)",
                   o->checkpoint, o->solver.steps);
}

/* ---------------------------------------------------------------------------- pint blocks */

static void check_pint(Checker *c, const Stmt *s, OdeBlock *o) {
    Pint *p = &o->pint;
    p->present = 1;
    p->loc = s->loc;
    if (strcmp(s->name, "parareal") != 0) {
        static const char *const methods[] = {"parareal"};
        diag_error(c->d, s->name_loc, "unknown parallel-in-time method '%s'%s", s->name,
                   suggest(c, s->name, methods, 1, "; the method is parareal"));
        return;
    }
    static const char *const keys[] = {"slices", "partition", "iterations", "coarse", "fine", "eval", "tol"};
    const Clause *seen[7] = {0};
    int bad = 0;
    for (int i = 0; i < s->n_body; i++) {
        const Stmt *t = s->body[i];
        if (t->kind == S_ERROR) continue;
        const char *head = stmt_head(t);
        int k = -1;
        for (int j = 0; head && j < 7; j++)
            if (strcmp(keys[j], head) == 0) k = j;
        const char *list = "slices, partition, iterations, coarse, fine, eval or tol";
        if (t->kind == S_SETTING && k < 0 && head) {
            diag_error(c->d, t->clauses[0].items[0]->loc, "unknown pint setting '%s'%s", head,
                       suggest(c, head, keys, 7, arena_printf(c->a, "; expected %s", list)));
            bad = 1;
            continue;
        }
        if (t->kind != S_SETTING || k < 0 || t->n_clauses != 1) {
            diag_error(c->d, t->loc, "expected a pint setting: %s", list);
            bad = 1;
            continue;
        }
        const Clause *cl = &t->clauses[0];
        if (seen[k]) {
            diag_error(c->d, cl->loc, "'%s' is set twice", head);
            bad = 1;
            continue;
        }
        seen[k] = cl;
        if (k != 3 && k != 4 && cl->n_items != 2) {
            diag_error(c->d, cl->loc, "'%s' takes one value", head);
            bad = 1;
            continue;
        }
        int64_t n;
        const Expr *v = cl->items[1];
        switch (k) {
        case 0:
            if (want_int(c, v, "slices", 1, MAX_SLICES, &n)) bad = 1;
            else p->slices = (int)n;
            break;
        case 1:
            if (v->kind != E_LIST || v->n_args < 2) {
                diag_error(c->d, v->loc, "partition must be a list of at least two times, e.g. [0, 0.25, 1]");
                bad = 1;
                break;
            }
            if (v->n_args - 1 > MAX_SLICES) {
                diag_error(c->d, v->loc, "the partition has %d slices; at most %d are allowed", v->n_args - 1, MAX_SLICES);
                bad = 1;
                break;
            }
            p->slices = v->n_args - 1;
            p->bounds = arena_alloc(c->a, sizeof(double) * (size_t)v->n_args);
            for (int j = 0; j < v->n_args; j++) {
                if (want_number(c, v->args[j].value, "a partition time", &p->bounds[j])) {
                    bad = 1;
                } else if (j > 0 && !(p->bounds[j] > p->bounds[j - 1])) {
                    diag_error(c->d, v->args[j].value->loc, "partition times must increase: %g comes after %g",
                               p->bounds[j], p->bounds[j - 1]);
                    bad = 1;
                }
            }
            if (!bad && (p->bounds[0] != o->t0 || p->bounds[p->slices] != o->t1)) {
                diag_error(c->d, v->loc, "the partition must cover the span [%g, %g]: it runs from %g to %g",
                           o->t0, o->t1, p->bounds[0], p->bounds[p->slices]);
                bad = 1;
            }
            break;
        case 2:
            if (want_int(c, v, "iterations", 0, 100000, &n)) bad = 1;
            else p->iterations = (int)n;
            break;
        case 3:
        case 4:
            if (parse_solver(c, cl, 1, k == 3 ? &p->coarse : &p->fine, 1)) bad = 1;
            break;
        case 5: {
            const char *mode;
            if (want_name(c, v, "eval", &mode)) bad = 1;
            else if (strcmp(mode, "parareal") == 0) p->eval_parareal = 1;
            else if (strcmp(mode, "fine") == 0) p->eval_parareal = 0;
            else {
                diag_error(c->d, v->loc, "eval must be parareal or fine, not '%s'", mode);
                bad = 1;
            }
            break;
        }
        case 6:
            if (want_number(c, v, "tol", &p->tol)) bad = 1;
            else if (!(p->tol > 0)) {
                diag_error(c->d, v->loc, "tol must be positive");
                bad = 1;
            }
            break;
        }
    }
    if (bad) return;
    if (seen[0] && seen[1]) {
        diag_error(c->d, seen[1]->loc, "give either slices or partition, not both");
        return;
    }
    const char *missing = !seen[0] && !seen[1] ? "its number of time slices: slices N (or partition [t0, ..., t1])"
                          : !seen[2]           ? "its number of iterations: iterations K"
                          : !seen[3]           ? "a coarse propagator, e.g. coarse euler steps 1"
                          : !seen[4]           ? "a fine propagator, e.g. fine rk4 steps 2"
                                               : NULL;
    if (missing) {
        diag_error(c->d, s->loc, "the pint block needs %s", missing);
        return;
    }
    if (!p->bounds) {
        p->bounds = arena_alloc(c->a, sizeof(double) * (size_t)(p->slices + 1));
        for (int j = 0; j <= p->slices; j++) p->bounds[j] = o->t0 + (o->t1 - o->t0) * j / p->slices;
    }
    if (p->iterations > p->slices)
        diag_error(c->d, seen[2]->loc, "iterations %d exceeds slices %d; Parareal is exact after %d iterations",
                   p->iterations, p->slices, p->slices);
    const Solver *sv = &o->solver;
    if (o->solver.loc.line == 0) return; /* no solver line: reported by check_ode */
    if (p->fine.kind != sv->kind)
        diag_error(c->d, seen[4]->loc, "the fine propagator (%s) must be the solver line's method (%s)",
                   solver_names[p->fine.kind], solver_names[sv->kind]);
    else if ((int64_t)p->fine.steps * p->slices != sv->steps)
        diag_error(c->d, seen[4]->loc,
                   "fine steps x slices = %d x %d = %lld, but the solver line has %d steps; they must agree",
                   p->fine.steps, p->slices, (long long)p->fine.steps * p->slices, sv->steps);
}

/* ---------------------------------------------------------------------------- ode blocks */

/* `dz/dt` on the left of an assignment: returns 1 and checks the names. */
static int is_derivative(const Stmt *s) {
    const Clause *cl = &s->clauses[0];
    return s->n_clauses == 1 && cl->n_items == 1 && cl->items[0]->kind == E_BINARY && cl->items[0]->op == '/';
}

static void check_derivative(Checker *c, const Stmt *s, OdeBlock *o) {
    const Expr *t = s->clauses[0].items[0];
    const char *want_z = arena_printf(c->a, "d%s", o->state), *want_t = arena_printf(c->a, "d%s", o->time);
    int bad = 0;
    if (t->lhs->kind != E_NAME || t->rhs->kind != E_NAME || strcmp(t->lhs->str, want_z) != 0 ||
        strcmp(t->rhs->str, want_t) != 0) {
        diag_error(c->d, t->loc, "the derivative in the ode block for '%s' must be written %s/%s", o->state,
                   want_z, want_t);
        bad = 1;
    }
    if (o->deriv) {
        diag_error(c->d, t->loc, "a second derivative; an ode block has exactly one");
        diag_note(c->d, o->deriv->clauses[0].loc, "the first is here");
        bad = 1;
    }
    int dim = check_expr(c, s->value);
    if (dim > 0) name_layers(c, arena_printf(c->a, "%s.f", o->state));
    c->layers.n = 0;
    if (dim >= 0 && o->dim > 0 && dim != o->dim) {
        diag_error(c->d, s->value->loc, "%s/%s has dimension %s, but the state '%s' has [%d]", want_z, want_t,
                   describe_dim(c, dim), o->state, o->dim);
        bad = 1;
    }
    if (!bad) o->deriv = s;
    else if (!o->deriv) o->deriv = s; /* still counts as present */
}

static void check_ode(Checker *c, const Stmt *s, OdeBlock *o) {
    o->stmt = s;
    o->state = s->name;
    o->time = s->time;
    int dim = check_expr(c, s->value);
    int bad = dim < 0;
    if (dim == 0) {
        diag_error(c->d, s->value->loc, "the initial state must be a tensor, not a constant");
        bad = 1;
    }
    o->dim = dim > 0 ? dim : -1;   /* -1: a bad initial state; uses of the state stay silent */
    if (want_number(c, s->t0, "the start time", &o->t0) | want_number(c, s->t1, "the end time", &o->t1)) bad = 1;
    else if (!(o->t1 > o->t0)) {
        diag_error(c->d, loc_span(s->t0->loc, s->t1->loc), "the time span must increase: [%g, %g]", o->t0, o->t1);
        bad = 1;
    }
    if (strcmp(s->name, s->time) == 0) {
        diag_error(c->d, s->time_loc, "the state and the time need different names");
        return;
    }
    define(c, s->name, s->name_loc, o->dim, SYM_STATE);
    if (define(c, s->time, s->time_loc, 1, SYM_TIME)) bad = 1;

    PtrVec locals = {0};
    const Stmt *pint = NULL;
    for (int i = 0; i < s->n_body; i++) {
        const Stmt *t = s->body[i];
        const char *head = stmt_head(t);
        if (t->kind == S_ASSIGN && is_derivative(t)) {
            check_derivative(c, t, o);
        } else if (t->kind == S_ASSIGN) {
            check_assign(c, t, o->state, SYM_TENSOR);
            const Expr *target = t->clauses[0].items[0];
            if (target->kind == E_NAME) ptrvec_push(c->a, &locals, (void *)target->str);
        } else if (t->kind == S_SETTING && head && strcmp(head, "solver") == 0) {
            if (o->solver.loc.line) {
                diag_error(c->d, t->loc, "a second solver line");
                continue;
            }
            if (t->n_clauses != 1 || parse_solver(c, &t->clauses[0], 1, &o->solver, 0)) bad = 1;
            o->solver.loc = t->loc;
        } else if (t->kind == S_SETTING && head && strcmp(head, "checkpoint") == 0) {
            if (o->checkpoint_loc.line) {
                diag_error(c->d, t->loc, "a second checkpoint line");
                continue;
            }
            o->checkpoint_loc = t->loc;
            int64_t n = 0;
            if (t->n_clauses != 1 || t->clauses[0].n_items != 2) {
                diag_error(c->d, t->loc, "checkpoint needs one number, the steps between stored states: checkpoint N");
                bad = 1;
            } else if (want_int(c, t->clauses[0].items[1], "checkpoint", 1, 1000000, &n)) {
                bad = 1;
            } else {
                o->checkpoint = (int)n;
            }
        } else if (t->kind == S_PINT) {
            if (pint) diag_error(c->d, t->loc, "a second pint block");
            pint = t;
        } else if (t->kind == S_ODE) {
            diag_error(c->d, t->loc, "ode blocks cannot be nested");
        } else if (t->kind != S_ERROR) {
            diag_error(c->d, t->loc, "expected a statement, the derivative %s, a solver line, a checkpoint line or a pint block in an ode block",
                       arena_printf(c->a, "d%s/d%s = ...", o->state, o->time));
        }
    }
    if (!o->deriv)
        diag_error(c->d, s->loc, "the ode block for '%s' has no derivative; add d%s/d%s = ...", o->state, o->state, o->time);
    if (!o->solver.loc.line && !bad)
        diag_error(c->d, s->loc, "the ode block for '%s' needs a solver line, e.g. solver rk4 steps 8", o->state);
    if (pint) check_pint(c, pint, o);
    check_checkpoint(c, o);

    for (int i = 0; i < locals.n; i++) {
        Sym *l = sym_find(&c->syms, locals.items[i]);
        if (l && l->kind == SYM_TENSOR) l->kind = SYM_HIDDEN;
    }
    Sym *time = sym_find(&c->syms, s->time);
    if (time && time->kind == SYM_TIME) time->kind = SYM_HIDDEN;
}

/* ---------------------------------------------------------------------------- the model */

void check_model(Checker *c, const Section *s) {
    Model *m = c->m;
    m->name = s->name;
    m->body = s->body;
    m->n_body = s->n_body;
    const Stmt *in = NULL, *out = NULL;
    int n_odes = 0;
    for (int i = 0; i < s->n_body; i++) {
        const Stmt *t = s->body[i];
        if (t->kind == S_ODE) n_odes++;
        if (t->kind != S_INPUT && t->kind != S_OUTPUT) continue;
        const Stmt **slot = t->kind == S_INPUT ? &in : &out;
        if (*slot) {
            diag_error(c->d, t->loc, "a second %s; a model has one input and one output vector",
                       t->kind == S_INPUT ? "input" : "output");
            continue;
        }
        *slot = t;
        int64_t dim = 0;
        want_int(c, t->size, t->kind == S_INPUT ? "the input dimension" : "the output dimension", 1, DINO_MAX_DIM, &dim);
        if (t->kind == S_INPUT) {
            m->input = t->name, m->in_dim = (int)dim, m->input_loc = t->name_loc;
        } else {
            m->output = t->name, m->out_dim = (int)dim, m->output_loc = t->name_loc;
        }
    }
    if (!in) diag_error(c->d, s->loc, "model '%s' has no input; declare it as: input x[N]", s->name);
    if (!out) diag_error(c->d, s->loc, "model '%s' has no output; declare it as: output y[N]", s->name);
    if (in && out && strcmp(m->input, m->output) == 0)
        diag_error(c->d, out->name_loc, "the output needs a name other than the input's");
    if (in) define(c, m->input, m->input_loc, m->in_dim > 0 ? m->in_dim : -1, SYM_INPUT);

    m->odes = arena_alloc(c->a, sizeof(OdeBlock) * (size_t)(n_odes ? n_odes : 1));
    int assigned = 0;
    for (int i = 0; i < s->n_body; i++) {
        const Stmt *t = s->body[i];
        c->stmt_index = i;
        switch (t->kind) {
        case S_INPUT:
        case S_OUTPUT:
        case S_ERROR: break;
        case S_ASSIGN:
            if (is_derivative(t)) {
                diag_error(c->d, t->clauses[0].loc, "a derivative belongs inside an ode block");
                break;
            }
            check_assign(c, t, NULL, SYM_TENSOR);
            if (out && t->clauses[0].items[0]->kind == E_NAME && strcmp(t->clauses[0].items[0]->str, m->output) == 0) {
                assigned = 1;
                if (t->value->dim > 0 && t->value->dim != m->out_dim)
                    diag_error(c->d, t->value->loc, "the output '%s' is declared [%d] but assigned [%d]", m->output,
                               m->out_dim, t->value->dim);
            }
            break;
        case S_ODE: {
            OdeBlock *o = &m->odes[m->n_odes++];
            check_ode(c, t, o);
            if (out && strcmp(t->name, m->output) == 0) {
                assigned = 1;
                if (o->dim > 0 && o->dim != m->out_dim)
                    diag_error(c->d, t->name_loc, "the output '%s' is declared [%d] but the ode state has [%d]",
                               m->output, m->out_dim, o->dim);
            }
            break;
        }
        case S_SETTING: {
            const char *head = stmt_head(t);
            diag_error(c->d, t->loc, "expected NAME = expression, input, output or an ode block%s",
                       head && strcmp(head, "solver") == 0 ? "; a solver line belongs inside an ode block" : "");
            break;
        }
        case S_PINT: diag_error(c->d, t->loc, "a pint block belongs inside an ode block"); break;
        }
    }
    if (out && !assigned)
        diag_error(c->d, out->name_loc, "the output '%s' is never assigned; add %s = ...", m->output, m->output);

    m->n_params = c->params.n;
    m->params = arena_alloc(c->a, sizeof(Param) * (size_t)(m->n_params ? m->n_params : 1));
    int64_t offset = 0;
    for (int i = 0; i < m->n_params; i++) {
        m->params[i] = *(Param *)c->params.items[i];
        m->params[i].offset = offset;
        if (m->params[i].size > MAX_WEIGHTS - offset) {
            diag_error(c->d, m->params[i].loc, "this layer takes the model past %lld parameters; no device holds that many",
                       (long long)MAX_WEIGHTS);
            break;
        }
        offset += m->params[i].size;
    }
    m->n_weights = offset;
}
