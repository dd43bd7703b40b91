/* check_ode.c - checks an ode block of the model: its state, time span, derivative, solver line,
 * checkpoint line and pint block.
 *
 * An ODE block opens a scope in which the state and the time are visible; its local names go out
 * of scope at the end of the block, and the state name then means the final state. */
#include <math.h>
#include <string.h>

#include "check.h"

enum { MAX_SLICES = 100000 }; /* Parareal time slices */
/* Saved times of one block: the model's output concatenates the T saved states, and a CUDA kernel
 * reads at most MAX_BUFS (fuse.h) buffers, T of them there. */
enum { MAX_SAVES = 2000 };

/* ---------------------------------------------------------------------------- solvers */

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
        diag_error(c->d, cl->items[from]->loc,
                   "Parareal propagators need a fixed-step solver (euler, midpoint or rk4)");
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
    const Expr *max_steps = NULL; /* the value, when given */
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
            max_steps = v;
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
            diag_error(c->d, cl->items[i]->loc, "%s has no setting '%s'%s", name, key,
                       did_you_mean(c, key, keys, n_keys));
            return -1;
        }
    }
    if (bad) return -1;
    if (kind == SOLVER_DOPRI5 && out->max_steps > DINO_DOPRI5_MAX_ATTEMPTS) {
        diag_error(c->d, max_steps ? max_steps->loc : cl->items[from]->loc,
                   "dopri5 is generated as max_steps attempts (each a step that is accepted or rejected), so "
                   "max_steps must be at most %d, not %d%s; e.g. `solver dopri5 rtol %g atol %g max_steps 64`",
                   DINO_DOPRI5_MAX_ATTEMPTS, out->max_steps, max_steps ? "" : " (the default)", out->rtol, out->atol);
        return -1;
    }
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
        diag_error(c->d, o->checkpoint_loc,
                   "checkpoint is for the fixed-step solvers (euler, midpoint, rk4), not dopri5");
    else if (o->pint.present)
        diag_error(c->d, o->checkpoint_loc,
                   "checkpoint cannot be combined with a pint block yet; Parareal stores its iterations");
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
                diag_error(c->d, v->loc, "the partition has %d slices; at most %d are allowed", v->n_args - 1,
                           MAX_SLICES);
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
                diag_error(c->d, v->loc, "the partition must cover the span [%g, %g]: it runs from %g to %g", o->t0,
                           o->t1, p->bounds[0], p->bounds[p->slices]);
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
        : !seen[2]                             ? "its number of iterations: iterations K"
        : !seen[3]                             ? "a coarse propagator, e.g. coarse euler steps 1"
        : !seen[4]                             ? "a fine propagator, e.g. fine rk4 steps 2"
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


/* ---------------------------------------------------------------------------- save lines */

/* Whether x (a fraction of the span times a step count) is a whole number, to rounding. */
static int on_step(double x) { return fabs(x - floor(x + 0.5)) <= 1e-9 * (1 + fabs(x)); }

/* `save every h` / `save at [t1, ...]`: the times, before the solver is known. */
static int parse_save(Checker *c, const Stmt *t, OdeBlock *o) {
    const Clause *cl = &t->clauses[0];
    const char *how = NULL;
    if (t->n_clauses != 1 || cl->n_items != 3 || cl->items[1]->kind != E_NAME ||
        (strcmp(how = cl->items[1]->str, "every") != 0 && strcmp(how, "at") != 0)) {
        diag_error(c->d, t->loc, "a save line is `save every H` (H divides the span) or `save at [t1, t2, ...]`");
        return -1;
    }
    const Expr *v = cl->items[2];
    double span = o->t1 - o->t0;
    if (how[0] == 'e') {
        double h;
        if (want_number(c, v, "save every", &h)) return -1;
        if (!(h > 0)) {
            diag_error(c->d, v->loc, "save every needs a positive interval, not %g", h);
            return -1;
        }
        double r = span / h;
        if (r > MAX_SAVES + 0.5) {
            diag_error(c->d, v->loc, "save every %g saves %.0f states over the span [%g, %g]; at most %d are allowed",
                       h, r, o->t0, o->t1, MAX_SAVES);
            return -1;
        }
        int n = (int)floor(r + 0.5);
        if (n < 1 || !on_step(r)) {
            diag_error(c->d, v->loc,
                       "save every %g does not divide the span [%g, %g] (%g intervals); e.g. save every %g", h, o->t0,
                       o->t1, r, span / (n < 1 ? 1 : n));
            return -1;
        }
        o->n_saves = n;
        o->save_times = arena_alloc(c->a, sizeof(double) * (size_t)n);
        for (int k = 0; k < n; k++) o->save_times[k] = k + 1 == n ? o->t1 : o->t0 + span * (k + 1) / n;
        return 0;
    }
    if (v->kind != E_LIST || v->n_args < 1) {
        diag_error(c->d, v->loc, "save at needs a list of times, e.g. save at [0.5, 1]");
        return -1;
    }
    if (v->n_args > MAX_SAVES) {
        diag_error(c->d, v->loc, "save at lists %d times; at most %d are allowed", v->n_args, MAX_SAVES);
        return -1;
    }
    o->save_times = arena_alloc(c->a, sizeof(double) * (size_t)v->n_args);
    for (int j = 0; j < v->n_args; j++) {
        const Expr *e = v->args[j].value;
        double x;
        if (want_number(c, e, "a saved time", &x)) return -1;
        if (x < o->t0 || x > o->t1) {
            diag_error(c->d, e->loc, "saved time %g is outside the span [%g, %g]", x, o->t0, o->t1);
            return -1;
        }
        if (j > 0 && !(x > o->save_times[j - 1])) {
            diag_error(c->d, e->loc, "saved times must increase: %g comes after %g", x, o->save_times[j - 1]);
            return -1;
        }
        o->save_times[j] = x;
    }
    o->n_saves = v->n_args;
    return 0;
}

/* Whether a pint block's slices differ in length (a partition). */
static int pint_uneven(const OdeBlock *o) {
    const Pint *p = &o->pint;
    double w = (o->t1 - o->t0) / p->slices;
    for (int j = 0; j <= p->slices; j++)
        if (fabs(p->bounds[j] - (o->t0 + w * j)) > 1e-12 * (o->t1 - o->t0)) return 1;
    return 0;
}

/* The saved times against the solver: a fixed-step solver's steps must land on each. */
static void check_save_steps(Checker *c, const Stmt *t, OdeBlock *o) {
    const Solver *sv = &o->solver;
    if (sv->kind == SOLVER_DOPRI5) return; /* its steps are shortened to land on the saved times */
    (void)t;
    double span = o->t1 - o->t0;
    o->save_steps = arena_alloc(c->a, sizeof(int) * (size_t)o->n_saves);
    int n_bad = 0, first_bad = -1;
    char list[200] = "";
    size_t used = 0;
    for (int k = 0; k < o->n_saves; k++) {
        double x = (o->save_times[k] - o->t0) / span * sv->steps;
        o->save_steps[k] = (int)floor(x + 0.5);
        if (on_step(x)) continue;
        if (first_bad < 0) first_bad = k;
        if (n_bad < 5 && used < sizeof list)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%g", n_bad ? ", " : "", o->save_times[k]);
        n_bad++;
    }
    if (!n_bad) return;
    /* the smallest step count from the solver's up that puts every saved time on a step */
    int64_t fit = 0;
    for (int64_t n = sv->steps; n <= 1000000 && !fit; n++) {
        int ok = 1;
        for (int k = 0; k < o->n_saves && ok; k++) ok = on_step((o->save_times[k] - o->t0) / span * (double)n);
        if (ok) fit = n;
    }
    const Clause *cl = &t->clauses[0];
    const Expr *where = cl->items[1]->str[0] == 'a' ? cl->items[2]->args[first_bad].value : cl->items[2];
    char hint[96] = "";
    if (fit)
        snprintf(hint, sizeof hint, "; %s steps %lld puts every saved time on a step", solver_names[sv->kind],
                 (long long)fit);
    diag_error(c->d, where->loc, "saved time%s %s%s %s not on a step of %s steps %d (steps of %g over [%g, %g])%s",
               n_bad > 1 ? "s" : "", list, n_bad > 5 ? arena_printf(c->a, " and %d more", n_bad - 5) : "",
               n_bad > 1 ? "are" : "is", solver_names[sv->kind], sv->steps, span / sv->steps, o->t0, o->t1, hint);
    o->n_saves = 0;
}

/* ---------------------------------------------------------------------------- ode blocks */

/* `dz/dt` on the left of an assignment: returns 1 and checks the names. */
int is_derivative(const Stmt *s) {
    const Clause *cl = &s->clauses[0];
    return s->n_clauses == 1 && cl->n_items == 1 && cl->items[0]->kind == E_BINARY && cl->items[0]->op == '/';
}

static void check_derivative(Checker *c, const Stmt *s, OdeBlock *o) {
    const Expr *t = s->clauses[0].items[0];
    const char *want_z = arena_printf(c->a, "d%s", o->state), *want_t = arena_printf(c->a, "d%s", o->time);
    int bad = 0;
    if (t->lhs->kind != E_NAME || t->rhs->kind != E_NAME || strcmp(t->lhs->str, want_z) != 0 ||
        strcmp(t->rhs->str, want_t) != 0) {
        diag_error(c->d, t->loc, "the derivative in the ode block for '%s' must be written %s/%s", o->state, want_z,
                   want_t);
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

void check_ode(Checker *c, const Stmt *s, OdeBlock *o) {
    o->stmt = s;
    o->state = s->name;
    o->time = s->time;
    int dim = check_expr(c, s->value);
    int bad = dim < 0;
    if (dim == 0) {
        diag_error(c->d, s->value->loc, "the initial state must be a tensor, not a constant");
        bad = 1;
    }
    o->dim = dim > 0 ? dim : -1; /* -1: a bad initial state; uses of the state stay silent */
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
    const Stmt *pint = NULL, *save = NULL;
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
        } else if (t->kind == S_SETTING && head && strcmp(head, "save") == 0) {
            if (save) {
                diag_error(c->d, t->loc, "a second save line");
                continue;
            }
            save = t;
            o->save_loc = t->loc;
            if (!bad && parse_save(c, t, o)) bad = 1;
        } else if (t->kind == S_PINT) {
            if (pint) diag_error(c->d, t->loc, "a second pint block");
            pint = t;
        } else if (t->kind == S_ODE) {
            diag_error(c->d, t->loc, "ode blocks cannot be nested");
        } else if (t->kind != S_ERROR) {
            diag_error(c->d, t->loc,
                       "expected a statement, the derivative %s, a solver line, a checkpoint line, a save line or a "
                       "pint block in an ode block",
                       arena_printf(c->a, "d%s/d%s = ...", o->state, o->time));
        }
    }
    if (!o->deriv)
        diag_error(c->d, s->loc, "the ode block for '%s' has no derivative; add d%s/d%s = ...", o->state, o->state,
                   o->time);
    if (!o->solver.loc.line && !bad)
        diag_error(c->d, s->loc, "the ode block for '%s' needs a solver line, e.g. solver rk4 steps 8", o->state);
    if (pint) check_pint(c, pint, o);
    check_checkpoint(c, o);
    if (o->n_saves && o->pint.present && o->pint.bounds && o->pint.slices > 0 && pint_uneven(o)) {
        diag_error(c->d, o->save_loc,
                   "save with an uneven pint partition is not supported; cut the span into equal "
                   "slices (slices N), whose fine steps are the solver line's");
        o->n_saves = 0;
    }
    if (o->n_saves && o->solver.loc.line) check_save_steps(c, save, o);

    for (int i = 0; i < locals.n; i++) {
        Sym *l = sym_find(&c->syms, locals.items[i]);
        if (l && l->kind == SYM_TENSOR) l->kind = SYM_HIDDEN;
    }
    Sym *time = sym_find(&c->syms, s->time);
    if (time && time->kind == SYM_TIME) time->kind = SYM_HIDDEN;
}
