/* check_model.c - checks the model section: its input and output, names, dimensions and
 * statements, and places the parameters in the flat buffer.
 *
 * Statements are checked in order with single assignment: every name is defined once and used
 * only after its definition. Each expression gets its per-sample dimension (0 for a constant
 * scalar). Calls are checked in check_calls.c, ode blocks in check_ode.c. */
#include <string.h>

#include "check.h"
#include "functions.h"

static const int64_t MAX_WEIGHTS = (int64_t)1 << 40; /* parameters in a model: 4 TiB in f32 */

/* ---------------------------------------------------------------------------- expressions */

const char *describe_dim(Checker *c, int dim) { return dim == 0 ? "a constant" : arena_printf(c->a, "[%d]", dim); }

static int check_binary(Checker *c, Expr *e) {
    int a = check_expr(c, e->lhs), b = check_expr(c, e->rhs);
    if (a < 0 || b < 0) return -1;
    switch (e->op) {
    case '+':
    case '-':
        if (a == b || a == 0 || b == 0) return a > b ? a : b;
        diag_error(c->d, e->loc, "'%c' needs equal dimensions, got %s %c %s", e->op, describe_dim(c, a), e->op,
                   describe_dim(c, b));
        return -1;
    case '*':
        if (a == b || a <= 1 || b <= 1) return a > b ? a : b;
        diag_error(c->d, e->loc, "'*' needs equal dimensions or a scalar side, got %s * %s", describe_dim(c, a),
                   describe_dim(c, b));
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
        const Expr *target =
            t->kind == S_ASSIGN && t->n_clauses == 1 && t->clauses[0].n_items == 1 ? t->clauses[0].items[0] : NULL;
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
    } else if (function_lookup(e->str)) {
        diag_error(c->d, e->loc, "'%s' is a function; call it, as in %s", e->str, function_lookup(e->str)->example);
    } else if (c->d->n_errors >= DIAG_MAX_ERRORS) {
        diag_error(c->d, e->loc, "unknown name '%s'", e->str); /* not shown: no time on explanations */
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
int check_expr(Checker *c, Expr *e) {
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

int define(Checker *c, const char *name, Loc loc, int dim, SymKind kind) {
    Sym *s = sym_find(&c->syms, name);
    if (s && s->kind == SYM_HIDDEN) { /* a local of an earlier ode block, out of scope: free again */
        *s = (Sym){name, dim, kind, loc};
        return 0;
    }
    if (s) {
        diag_error(c->d, loc, "'%s' is already defined; each name is assigned once", name);
        diag_note(c->d, s->loc, "'%s' was defined here", name);
        return -1;
    }
    if (function_lookup(name)) {
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

void check_assign(Checker *c, const Stmt *s, const char *prefix, SymKind kind) {
    const Expr *t = assign_target(c, s, "in a model");
    int dim = check_expr(c, s->value);
    if (!t) return;
    if (dim == 0) {
        diag_error(c->d, s->value->loc, "'%s' would be a constant; a model statement must compute a tensor", t->str);
        dim = -1;
    }
    if (dim > 0) name_layers(c, prefix ? arena_printf(c->a, "%s.%s", prefix, t->str) : t->str);
    c->layers.n = 0;
    define(c, t->str, t->loc, dim, kind); /* dim -1: uses of the name stay silent */
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
        want_int(c, t->size, t->kind == S_INPUT ? "the input dimension" : "the output dimension", 1, DINO_MAX_DIM,
                 &dim);
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
    resolve_bases(c);

    m->odes = arena_alloc(c->a, sizeof(OdeBlock) * (size_t)(n_odes ? n_odes : 1));
    int assigned = 0;
    const OdeBlock *saved = NULL; /* the block with a save line: later statements run per saved time */
    const Stmt *out_at = NULL;    /* the output's last assignment */
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
                out_at = t;
                if (t->value->dim > 0 && t->value->dim != m->out_dim)
                    diag_error(c->d, t->value->loc, "the output '%s' is declared [%d] but assigned [%d]", m->output,
                               m->out_dim, t->value->dim);
            }
            break;
        case S_ODE: {
            OdeBlock *o = &m->odes[m->n_odes++];
            check_ode(c, t, o);
            if (saved) {
                diag_error(c->d, t->loc,
                           "an ode block after one with a save line: after it '%s' stands for %d saved "
                           "states, so it must be the model's last ode block",
                           saved->state, saved->n_saves);
                diag_note(c->d, saved->save_loc, "the save line is here");
            } else if (o->n_saves) {
                saved = o;
            }
            if (out && strcmp(t->name, m->output) == 0) {
                assigned = 1;
                out_at = t;
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
    m->out_cols = m->out_dim;
    m->out_rows = 1;
    if (saved && m->n_bases) {
        diag_error(c->d, saved->save_loc,
                   "save with a basis section is not supported yet (a basis of the output would "
                   "span a whole trajectory, encode and decode act on one state)");
    } else if (saved && out_at && out_at->loc.line < saved->stmt->loc.line) {
        diag_error(c->d, out_at->loc,
                   "the output '%s' is assigned before the ode block with a save line; assign it "
                   "after the block (e.g. %s = %s) so that it is the trajectory",
                   m->output, m->output, saved->state);
    } else if (saved && m->out_dim > 0) {
        if ((int64_t)m->out_dim * saved->n_saves > DINO_MAX_DIM)
            diag_error(c->d, saved->save_loc,
                       "%d saved times of the output [%d] make %lld values per sample; at most %d are allowed",
                       saved->n_saves, m->out_dim, (long long)m->out_dim * saved->n_saves, DINO_MAX_DIM);
        else m->out_rows = saved->n_saves, m->out_dim *= saved->n_saves, m->trajectory = 1;
    }

    basis_params(c);
    m->n_params = c->params.n;
    m->params = arena_alloc(c->a, sizeof(Param) * (size_t)(m->n_params ? m->n_params : 1));
    int64_t offset = 0;
    for (int i = 0; i < m->n_params; i++) {
        m->params[i] = *(Param *)c->params.items[i];
        m->params[i].offset = offset;
        if (m->params[i].size > MAX_WEIGHTS - offset) {
            diag_error(c->d, m->params[i].loc,
                       "this layer takes the model past %lld parameters; no device holds that many",
                       (long long)MAX_WEIGHTS);
            break;
        }
        if (!m->params[i].frozen) m->n_trainable = offset + m->params[i].size;
        offset += m->params[i].size;
    }
    m->n_weights = offset;
}
