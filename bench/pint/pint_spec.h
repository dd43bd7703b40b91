/* pint_spec.h - the neural ODE that bench/pint/bench_pint.c and bench/gpu/pint_gpu.c time: x[IN]
 * -> tanh(dense) -> an rk4 ODE of width DIM with STEPS steps and a pint block -> y[OUT] (cross
 * entropy). PINT_SPEC's arguments, in order: name, IN, OUT, DIM, DIM, STEPS, the pint block ("" for
 * the serial solve), OUT, "f32" or "f64". */
#ifndef DINO_BENCH_PINT_SPEC_H
#define DINO_BENCH_PINT_SPEC_H

enum { IN = 8, OUT = 4 };

#define PINT_SPEC                             \
    "model %s { input x[%d]; output y[%d]\n"  \
    "  z0 = tanh(dense(x, %d))\n"             \
    "  ode z = z0, t in [0, 1] {\n"           \
    "    a = tanh(dense(concat(z, t), 64))\n" \
    "    dz/dt = dense(a, %d)\n"              \
    "    solver rk4 steps %d\n"               \
    "%s"                                      \
    "  }\n"                                   \
    "  y = dense(z, %d) }\n"                  \
    "loss { cross_entropy y }\n"              \
    "train { precision %s; seed 0 }\n"

#endif
