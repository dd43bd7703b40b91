/* test_api_trajectory.c - a trajectory model (an ode block with `save at`) through dino.h: the
 * spec's info (out_times, out_step), data from arrays [n, T, dim] and [n, T, dim, in], training,
 * and predictions [n, T, dim] / [n, T, dim, in] whose saved states are the right ones: the state
 * saved at t0 is the input (Jacobian the identity), the state saved at 0.5 is what the same
 * weights give over the span [0, 0.5] with the same step, and the one at 1 what they give over
 * [0, 1] without a save line (checkpoints carry the weights between the models). Both Jacobian
 * modes. Needs a C compiler at run time (the CPU backend); DINO_CACHE_DIR is set by ctest. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dino.h"

static int failures, checks;

#define CHECK(cond, ...)                                \
    do {                                                \
        checks++;                                       \
        if (!(cond)) {                                  \
            failures++;                                 \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                        \
            printf(" [%s]\n", dino_last_error());       \
        }                                               \
    } while (0)

/* The model with the span, the save line and the output statement given. */
static char *spec_text(const char *span, const char *save, const char *steps) {
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "model spiral {\n"
             "    input  y0[2]\n"
             "    output y[2]\n"
             "    ode z = y0, t in %s {\n"
             "        dz/dt = dense(tanh(dense(concat(z, t), 12)), 2)\n"
             "        solver rk4 steps %s\n"
             "        %s\n"
             "    }\n"
             "    y = z\n"
             "}\n"
             "loss { l2 y weight 1.0 relative; h1 dy/dy0 weight 0.5 relative }\n"
             "train { optimizer adam(lr = 1e-2); batch 10; epochs 4; seed 3; precision f64 }\n",
             span, steps, save);
    return buf;
}

/* the specs of open_model's models, freed at the end (a model reads its spec while it lives) */
static dino_spec *opened[32];
static int n_opened;

static dino_model *open_model(const char *name, const char *text, dino_jacobian jac) {
    dino_spec *spec;
    if (dino_spec_from_text(name, text, strlen(text), &spec) != DINO_OK) {
        printf("FAIL: %s does not check: %s\n", name, spec ? dino_spec_diagnostics_text(spec) : dino_last_error());
        failures++;
        return NULL;
    }
    if (n_opened < 32) opened[n_opened++] = spec;
    dino_model *m;
    dino_open_options oo = {.backend = DINO_BACKEND_CPU, .jacobian = jac};
    dino_status st = dino_model_open(spec, &oo, &m);
    CHECK(st == DINO_OK, "dino_model_open %s", name);
    return st ? NULL : m;
}

enum { N = 60, T = 3, D = 2 };

int main(void) {
    dino_spec *spec;
    static char traj[2048], half[2048], whole[2048];
    snprintf(traj, sizeof traj, "%s", spec_text("[0, 1]", "save at [0, 0.5, 1]", "8"));
    snprintf(half, sizeof half, "%s", spec_text("[0, 0.5]", "", "4"));
    snprintf(whole, sizeof whole, "%s", spec_text("[0, 1]", "", "8"));
    CHECK(dino_spec_from_text("traj.dino", traj, strlen(traj), &spec) == DINO_OK, "the trajectory spec checks");
    dino_spec_info info;
    CHECK(dino_spec_info_get(spec, &info) == DINO_OK && info.out_times == T && info.out_step == D &&
              info.out_dim == T * D,
          "info: out_times %d, out_step %d, out_dim %d", info.out_times, info.out_step, info.out_dim);
    dino_spec_free(spec);

    /* data: the linear spiral dy/dt = A y, exactly */
    static double x[N * D], y[N * T * D], J[N * T * D * D];
    const double times[T] = {0, 0.5, 1}, a = -0.3, b = 2.0;
    for (int r = 0; r < N; r++) {
        x[r * D] = cos(0.7 * r), x[r * D + 1] = sin(1.3 * r);
        for (int k = 0; k < T; k++) {
            double e = exp(a * times[k]), c = e * cos(b * times[k]), s = e * sin(b * times[k]);
            double M[2][2] = {{c, s}, {-s, c}};
            for (int i = 0; i < D; i++) {
                y[(r * T + k) * D + i] = M[i][0] * x[r * D] + M[i][1] * x[r * D + 1];
                for (int j = 0; j < D; j++) J[((r * T + k) * D + i) * D + j] = M[i][j];
            }
        }
    }
    char path[] = "/tmp/dino_test_traj_XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    for (int mode = 0; mode < 2; mode++) {
        dino_jacobian jac = mode ? DINO_JACOBIAN_REVERSE : DINO_JACOBIAN_FORWARD;
        const char *mname = mode ? "reverse" : "forward";
        dino_model *m = open_model("traj.dino", traj, jac);
        if (!m) return 1;
        dino_data *data;
        dino_arrays tr = {.n = 50, .x = x, .y = y, .J = J},
                    te = {.n = 10, .x = x + 50 * D, .y = y + 50 * T * D, .J = J + 50 * T * D * D};
        dino_arrays nojac = tr;
        nojac.J = NULL;
        CHECK(dino_data_from_arrays(m, &nojac, &te, &data) == DINO_EUSER && strstr(dino_last_error(), "[n, 3, 2, 2]"),
              "an h1 loss without Jacobian data names the trajectory's shape");
        CHECK(dino_data_from_arrays(m, &tr, &te, &data) == DINO_OK, "data [n, T, dim] from arrays");
        dino_train_options to = {.save = path};
        CHECK(dino_train(m, data, &to) == DINO_OK, "%s: training on trajectories", mname);
        dino_data_free(data);

        static double yp[N * T * D], Jp[N * T * D * D];
        CHECK(dino_predict(m, N, x, yp, Jp) == DINO_OK, "dino_predict");
        double w0 = 0, wJ0 = 0;
        for (int r = 0; r < N; r++)
            for (int i = 0; i < D; i++) {
                w0 = fmax(w0, fabs(yp[(r * T) * D + i] - x[r * D + i]));
                for (int j = 0; j < D; j++) wJ0 = fmax(wJ0, fabs(Jp[((r * T) * D + i) * D + j] - (i == j)));
            }
        CHECK(w0 == 0 && wJ0 == 0, "%s: the state saved at t0 is the input (%g), its Jacobian the identity (%g)", mname,
              w0, wJ0);

        /* the same weights over [0, 0.5] with the same step, and over [0, 1] without saves */
        const char *texts[2] = {half, whole};
        for (int k = 1; k < T; k++) {
            dino_model *o = open_model(k == 1 ? "half.dino" : "whole.dino", texts[k - 1], jac);
            if (!o) return 1;
            CHECK(dino_model_load(o, path, NULL) == DINO_OK, "the trajectory model's weights load");
            static double yo[N * D], Jo[N * D * D];
            CHECK(dino_predict(o, N, x, yo, Jo) == DINO_OK, "dino_predict");
            double wy = 0, wJ = 0;
            for (int r = 0; r < N; r++)
                for (int i = 0; i < D; i++) {
                    wy = fmax(wy, fabs(yp[(r * T + k) * D + i] - yo[r * D + i]));
                    for (int j = 0; j < D; j++)
                        wJ = fmax(wJ, fabs(Jp[((r * T + k) * D + i) * D + j] - Jo[(r * D + i) * D + j]));
                }
            CHECK(wy < 1e-13 && wJ < 1e-12,
                  "%s: the state saved at %g is the solve over [0, %g] (output %g, Jacobian %g)", mname, times[k],
                  times[k], wy, wJ);
            dino_model_free(o);
        }
        dino_model_free(m);
    }
    remove(path);
    for (int i = 0; i < n_opened; i++) dino_spec_free(opened[i]);
    printf("%d checks, %d failed\n", checks, failures);
    return failures != 0;
}
