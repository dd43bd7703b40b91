/* predict.c - a trained dino model used from C through dino.h: its value and its Jacobian.
 *
 *   dino-predict MODEL.dino MODEL.safetensors IN.npy OUT_DIR
 *
 * Loads the spec and the trained parameters, evaluates the output q = f(m) and the Jacobian
 * J = dq/dm for every row of IN.npy [N, dim(m)], writes OUT_DIR/<output>.npy [N, dim(q)] and
 * OUT_DIR/J.npy [N, dim(q), dim(m)] in the model's precision (as `dino-jit --predict` does),
 * and prints the first row's values and the product J v for v = (1, ..., 1).
 *
 * Build against an installed dino:
 *   cc predict.c $(pkg-config --cflags --libs dino) -o dino-predict */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <dino.h>

/* Prints dino's message for a failed call and exits with its status. */
static void check(dino_status st) {
    if (st == DINO_OK) return;
    fprintf(stderr, "dino-predict: %s\n", dino_last_error());
    exit(st);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: dino-predict MODEL.dino MODEL.safetensors IN.npy OUT_DIR  (libdino %s)\n",
                dino_version());
        return DINO_EUSER;
    }
    dino_spec *spec;
    if (dino_spec_load(argv[1], &spec) != DINO_OK) { /* every error, with its source line */
        fputs(dino_spec_diagnostics_text(spec), stderr);
        dino_spec_free(spec);
        return DINO_EUSER;
    }
    dino_spec_info info;
    check(dino_spec_info_get(spec, &info));

    dino_model *model; /* generated, compiled (or from the cache) and loaded */
    check(dino_model_open(spec, NULL, &model));
    check(dino_model_load(model, argv[2], NULL));

    dino_npy in;
    check(dino_npy_read(argv[3], &in));
    if (in.ndim != 2 || in.shape[1] != info.in_dim) {
        fprintf(stderr, "dino-predict: %s: expected [N, %d], found %d dimensions\n", argv[3], info.in_dim, in.ndim);
        return DINO_EUSER;
    }
    long long n = in.shape[0], out = info.out_dim, dim = info.in_dim;
    double *q = malloc(sizeof(double) * (size_t)(n * out));
    double *J = malloc(sizeof(double) * (size_t)(n * out * dim));
    check(dino_predict(model, n, in.data, q, J)); /* q [n, out], J [n, out, in] */

    dino_backend_info b;
    check(dino_model_backend(model, &b));
    char path[4096];
    long long qshape[2] = {n, out}, jshape[3] = {n, out, dim};
    mkdir(argv[4], 0777);
    snprintf(path, sizeof path, "%s/%s.npy", argv[4], info.output);
    check(dino_npy_write(path, b.f64, 2, qshape, q));
    snprintf(path, sizeof path, "%s/J.npy", argv[4]);
    check(dino_npy_write(path, b.f64, 3, jshape, J));

    /* The first row: q, and J v for v = 1 (the row sums of J) by dino_jvp */
    double *v = malloc(sizeof(double) * (size_t)dim), *Jv = malloc(sizeof(double) * (size_t)out);
    for (long long k = 0; k < dim; k++) v[k] = 1;
    check(dino_jvp(model, 1, in.data, v, NULL, Jv));
    printf("%s on %s: %lld rows, %s[%lld] -> %s[%lld]\n", info.name, b.name, n, info.input, dim, info.output, out);
    for (long long o = 0; o < out && n > 0; o++)
        printf("  %s[%lld] = % .6e   (J v)[%lld] = % .6e\n", info.output, o, q[o], o, Jv[o]);

    free(v), free(Jv), free(q), free(J);
    dino_npy_free(&in);
    dino_model_free(model);
    dino_spec_free(spec);
    return DINO_OK;
}
