/* list_functions.c - prints the function table (compiler/functions.c) as docs/language.md's
 * markdown table; tests/run_docs_functions.sh diffs the two so the docs cannot drift. */
#include "functions.h"

int main(void) {
    functions_print_markdown(stdout);
    return 0;
}
