/* abi.c - the layout of terms[] (abi.h), computed once from the model for the code
 * generators (lower.c assigns the slots) and the runtime (train.c reads the sums). */
#include <stdlib.h>

#include "abi.h"

/* Gate slots one ODE block uses. */
static int block_gates(const OdeBlock *o) {
    if (o->pint.present) return o->pint.tol > 0 ? o->pint.iterations - 1 : 0;
    return o->solver.kind == SOLVER_DOPRI5 ? dopri5_slots(o) * o->solver.max_steps : 0;
}

static int block_corrections(const OdeBlock *o) { return o->pint.present ? 2 * o->pint.iterations : 0; }

BlockTerms block_terms(const Model *m, int block) {
    BlockTerms t = {.corrections = m->n_loss};
    for (int i = 0; i < block; i++) {
        t.corrections += block_corrections(&m->odes[i]);
        t.gates_before += block_gates(&m->odes[i]);
    }
    t.n_corrections = block_corrections(&m->odes[block]);
    t.n_gates = block_gates(&m->odes[block]);
    return t;
}

TermLayout term_layout(const Model *m) {
    TermLayout l = {.n_loss = m->n_loss};
    for (int i = 0; i < m->n_odes; i++) {
        l.n_corrections += block_corrections(&m->odes[i]);
        l.n_gates += block_gates(&m->odes[i]);
    }
    l.gate_base = l.n_loss + l.n_corrections;
    l.n_monitors = l.n_corrections + l.n_gates;
    l.n_terms = l.n_loss + l.n_monitors;
    return l;
}

/* A launch plan's arrays (the emitter fills a plan; the CUDA backend owns and frees it). */
void cuda_plan_free(CudaPlan *plan) {
    free(plan->predict);
    free(plan->train);
    plan->predict = plan->train = NULL;
    plan->n_predict = plan->n_train = 0;
}
