/* test_harness.c - the harness's own checks (harness.h): that a comparison fails when it
 * should (a wrong value, a NaN), that it measures what it says, and that spec templates are
 * filled in and refuse what they should. The FAIL lines t_close prints for the planted
 * mismatches are expected; the summary line is the verdict.
 *
 * usage: test_harness [-v] */
#include "harness.h"

int main(int argc, char **argv) {
    T t;
    if (t_begin(&t, argc, argv, "harness")) return 2;

    /* t_rel_diff and t_close: max |got - want| / max |want|, f64 and f32, NaN is the worst */
    double want[5] = {1, -4, 2, 0.5, 3}, got[5] = {1, -4, 2, 0.5, 3};
    float gotf[5] = {1, -4, 2, 0.5f, 3};
    long at = -1;
    double diff = -1;
    CHECK(&t, t_rel_diff(got, 1, want, 1, 5, &at, &diff) == 0 && diff == 0);
    CHECK(&t, t_rel_diff(gotf, 0, want, 1, 5, NULL, NULL) == 0);
    CHECK(&t, t_close("  ", "equal values", got, 1, want, 1, 5, 0));
    got[3] = 0.5 + 1e-3;
    CHECK_NEAR(&t, t_rel_diff(got, 1, want, 1, 5, &at, &diff), 1e-3 / 4, 1e-12);
    CHECK(&t, at == 3);
    printf("(a planted mismatch follows)\n");
    CHECK(&t, !t_close("  ", "one value off by 1e-3 (planted)", got, 1, want, 1, 5, 1e-4));
    CHECK(&t, t_close("  ", "the same within a looser tolerance", got, 1, want, 1, 5, 1e-3));
    got[3] = NAN; /* followed by equal values, which must not hide it */
    printf("(a planted NaN follows)\n");
    CHECK(&t, !t_close("  ", "a NaN (planted)", got, 1, want, 1, 5, 1e300));
    CHECK(&t, t_rel_diff(got, 1, want, 1, 5, &at, NULL) != 0 && at == 3);
    double zeros[2] = {0, 0}, small[2] = {0, 1e-20};
    CHECK(&t, t_rel_diff(small, 1, zeros, 1, 2, NULL, NULL) == 1e-20); /* want all zero: absolute */

    /* CHECK_ERR's matching, without counting into t */
    T scratch = {0};
    printf("(three planted error mismatches follow)\n");
    CHECK(&t, t_check_err(&scratch, -1, "a.npy: bad magic", "a.npy", __FILE__, __LINE__, "magic", (char *)NULL));
    CHECK(&t, !t_check_err(&scratch, 0, "a.npy: bad magic", "a.npy", __FILE__, __LINE__, (char *)NULL));
    CHECK(&t, !t_check_err(&scratch, -1, "b.npy: bad magic", "a.npy", __FILE__, __LINE__, (char *)NULL));
    CHECK(&t, !t_check_err(&scratch, -1, "a.npy: bad magic", NULL, __FILE__, __LINE__, "shape", (char *)NULL));
    CHECK(&t, scratch.passed == 1 && scratch.failed == 3);

    /* spec paths and templates */
    char path[64], err[512];
    CHECK(&t, t_spec_path(path, sizeof path, "d", "x") == 0 && strcmp(path, "d/x.dino") == 0);
    CHECK(&t, t_spec_path(path, sizeof path, "d", "x.dino") == 0 && strcmp(path, "d/x.dino") == 0);
    CHECK(&t, t_spec_path(path, 4, "d", "x") == -1);
    const char *tmpl = t_path(&t, "t.dino.in");
    const char *text = "# @A@ and @B_2@\nmodel m { @A@ } # a@b.c, @lower@\n";
    CHECK(&t, t_write_file(tmpl, text, strlen(text)) == 0);
    const char *pairs[] = {"A", "alpha", "B_2", "", NULL};
    char *filled = t_spec_fill(tmpl, pairs, err, sizeof err);
    CHECK(&t, filled && strcmp(filled, "# alpha and \nmodel m { alpha } # a@b.c, @lower@\n") == 0);
    free(filled);
    const char *missing[] = {"A", "alpha", NULL};
    filled = t_spec_fill(tmpl, missing, err, sizeof err);
    CHECK(&t, !filled && strstr(err, "no value for the placeholder @B_2@"));
    const char *unused[] = {"A", "1", "B_2", "2", "C", "3", NULL};
    filled = t_spec_fill(tmpl, unused, err, sizeof err);
    CHECK(&t, !filled && strstr(err, "no placeholder @C@"));
    filled = t_spec_fill(t_path(&t, "absent.dino.in"), pairs, err, sizeof err);
    CHECK(&t, !filled && strstr(err, "cannot read"));
    CHECK(&t,
          t_spec_generate(tmpl, pairs, t.dir, "out", path, sizeof path, err, sizeof err) == -1 ||
              t_file_exists(path)); /* path may be too short for the scratch folder: then -1 */
    char longpath[600];
    CHECK(&t, t_spec_generate(tmpl, pairs, t.dir, "out", longpath, sizeof longpath, err, sizeof err) == 0);
    size_t n;
    unsigned char *back = t_read_file(longpath, &n);
    CHECK(&t, back && n == strlen("# alpha and \nmodel m { alpha } # a@b.c, @lower@\n") && back[n] == 0);
    free(back);
    return t_end(&t, "harness");
}
