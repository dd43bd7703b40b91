/* list_functions.c - prints the function table (compiler/functions.c) as docs/language.md's
 * markdown table; tests/run_docs_functions.sh diffs the two so the docs cannot drift. It also
 * checks the table against itself: every keyword with a default appears in the usage (the
 * text of messages and docs) as `key = default`, and every keyword in the usage. Exit 1 when
 * not. */
#include <stdio.h>
#include <string.h>

#include "functions.h"

int main(void) {
    int bad = 0;
    for (int i = 0; i < n_functions; i++) {
        const FunctionDef *f = &functions[i];
        for (int j = 0; j < FN_MAX_ARGS && f->keys[j].name; j++) {
            char want[128];
            if (f->keys[j].fallback) snprintf(want, sizeof want, "%s = %s", f->keys[j].name, f->keys[j].fallback);
            else snprintf(want, sizeof want, "%s = ", f->keys[j].name);
            if (!strstr(f->usage, want)) {
                fprintf(stderr, "list_functions: %s's usage '%s' lacks '%s'\n", f->name, f->usage, want);
                bad = 1;
            }
        }
        if (!strstr(f->usage, f->name) || strncmp(f->example, f->name, strlen(f->name)) != 0) {
            fprintf(stderr, "list_functions: %s's usage or example does not call it\n", f->name);
            bad = 1;
        }
    }
    functions_print_markdown(stdout);
    return bad;
}
