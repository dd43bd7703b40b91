/* programs.c - program assembly: a checked model -> the two IR programs an emitter writes,
 * prediction (output and, for regression, the Jacobian) and a training step (loss terms and
 * every parameter's gradient), each lowered (lower.c), differentiated (autodiff.c) and
 * checkpointed (recompute.c). Refuses what the code generator cannot run yet. */
#include <string.h>

#include "ir.h"

static int supported(const Model *m, char *err, size_t errlen) {
    for (int i = 0; i < m->n_odes; i++) {
        const Solver *s = &m->odes[i].solver;
        if (s->kind == SOLVER_DOPRI5 && s->max_steps > DINO_DOPRI5_MAX_ATTEMPTS) {
            snprintf(err, errlen,
                     "%s:%d:%d: error: dopri5 is generated as max_steps attempts (each a step that is accepted or "
                     "rejected), so max_steps must be at most %d here, not %d%s; e.g. `solver dopri5 rtol %g atol %g "
                     "max_steps 64`",
                     m->path, s->loc.line, s->loc.col, DINO_DOPRI5_MAX_ATTEMPTS, s->max_steps,
                     s->max_steps == 1000 ? " (the default)" : "", s->rtol, s->atol);
            return -1;
        }
    }
    return 0;
}

int build_programs(Arena *a, const Model *m, JacMode mode, Programs *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (supported(m, err, errlen)) return -1;
    int h1 = 0;
    for (int i = 0; i < m->n_loss; i++) h1 |= m->loss[i].kind == LOSS_H1;

    Program *pr = &out->predict;
    *pr = (Program){.arena = a, .model = m};
    for (int i = 0; i < m->n_odes; i++) pr->parareal |= m->odes[i].pint.eval_parareal;
    lower_forward(pr);
    if (pr->has_project) {
        snprintf(err, errlen, "%s: error: the code generator does not support project() yet", m->path);
        return -1;
    }
    ir_root(pr, pr->output);
    if (!m->classifier) {
        build_jacobian(pr, mode);
        ir_root(pr, pr->jacobian);
    }
    pr->n_primal = pr->nodes.n;
    ir_recompute(pr);

    Program *tr = &out->train;
    *tr = (Program){.arena = a, .model = m, .parareal = 1, .monitor = 1};
    lower_forward(tr);
    if (h1) build_jacobian(tr, mode);
    build_gradient(tr);
    ir_recompute(tr);
    return ir_check_ops(pr, err, errlen) || ir_check_ops(tr, err, errlen) ? -1 : 0;
}
