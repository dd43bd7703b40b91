# tests/frontend.cmake - the front end's tests, included from tests/CMakeLists.txt:
#
#   golden_diagnostics   every tests/parse/*.dino against its .expected (messages, carets, dumps)
#   hostile_input        generated garbage, 10 MB files, deep nesting, NUL bytes, ... (exit 0/1 only)
#   shared_specs_check   dinoc --check on ${DINO_SHARED_DIR}/specs/*.dino, specs/*.dino, tests/specs/*.dino
#                        and the planned specs whose features work (planned/dino_select.dino)
#   docs_functions       docs/language.md's function table against compiler/functions.c's
#   check_gate           every spec --check accepts generates C and CUDA
#   fuzz_smoke           20 s of libFuzzer on the parser and checker (only where clang has libFuzzer)
#
# Run the sanitizer variants with a -DDINO_SANITIZE=ON build folder. See tests/README.md.
if(NOT DEFINED DINO_SHARED_DIR)
  set(DINO_SHARED_DIR "${CMAKE_SOURCE_DIR}/../shared")
endif()

add_test(NAME golden_diagnostics
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/run_golden.sh $<TARGET_FILE:dinoc> ${CMAKE_CURRENT_SOURCE_DIR}/parse)
add_test(NAME hostile_input
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/run_hostile.sh $<TARGET_FILE:dinoc>)
add_test(NAME shared_specs_check
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/check_specs.sh $<TARGET_FILE:dinoc>
          ${DINO_SHARED_DIR}/specs ${CMAKE_SOURCE_DIR}/specs ${CMAKE_CURRENT_SOURCE_DIR}/specs
          ${DINO_SHARED_DIR}/specs/planned/dino_select.dino ${DINO_SHARED_DIR}/specs/planned/node_spiral.dino
          ${CMAKE_SOURCE_DIR}/examples/spiral ${CMAKE_SOURCE_DIR}/examples/lotka)
set_tests_properties(golden_diagnostics hostile_input shared_specs_check PROPERTIES LABELS frontend)
set_tests_properties(hostile_input PROPERTIES TIMEOUT 600)
if(DINO_SANITIZE)   # ASan makes the 10 MB cases about 8x slower: a hang is still one past 60 s
  set_tests_properties(hostile_input PROPERTIES ENVIRONMENT "DINO_HOSTILE_LIMIT=60")
endif()
set_tests_properties(shared_specs_check PROPERTIES SKIP_RETURN_CODE 77)

# The fuzz smoke test needs a clang that links libFuzzer; run_fuzz.sh builds its own harness.
find_program(DINO_CLANG NAMES clang clang-18 clang-17 clang-16 clang-15 clang-14)
set(DINO_HAVE_LIBFUZZER OFF)
if(DINO_CLANG)
  set(probe ${CMAKE_CURRENT_BINARY_DIR}/libfuzzer_probe.c)
  file(WRITE ${probe} "int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n")
  execute_process(COMMAND ${DINO_CLANG} -fsanitize=fuzzer,address,undefined ${probe}
                          -o ${CMAKE_CURRENT_BINARY_DIR}/libfuzzer_probe
                  RESULT_VARIABLE probe_rc OUTPUT_QUIET ERROR_QUIET)
  if(probe_rc EQUAL 0)
    set(DINO_HAVE_LIBFUZZER ON)
  endif()
endif()
if(DINO_HAVE_LIBFUZZER)
  add_test(NAME fuzz_smoke COMMAND ${CMAKE_COMMAND} -E env CC=${DINO_CLANG}
           sh ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/run_fuzz.sh 20)
  set_tests_properties(fuzz_smoke PROPERTIES LABELS "frontend;fuzz" SKIP_RETURN_CODE 77 TIMEOUT 300
                       WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
else()
  message(STATUS "fuzz_smoke: no clang with libFuzzer (-fsanitize=fuzzer) found; the test is not added")
endif()

# docs_functions: docs/language.md's function table is compiler/functions.c's table, as
# list_functions prints it (run_docs_functions.sh).
add_executable(list_functions list_functions.c)
target_link_libraries(list_functions PRIVATE dino_front)
add_test(NAME docs_functions
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/run_docs_functions.sh $<TARGET_FILE:list_functions>
          ${CMAKE_SOURCE_DIR}/docs/language.md)
set_tests_properties(docs_functions PROPERTIES LABELS frontend)

# check_gate: the checker is the one gate; every spec of tests/parse, specs/ and the shared specs
# that `dinoc --check` accepts also generates C and CUDA (check_gate.sh).
add_test(NAME check_gate
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/check_gate.sh $<TARGET_FILE:dinoc> ${CMAKE_CURRENT_SOURCE_DIR}/parse
          ${CMAKE_SOURCE_DIR}/specs ${DINO_SHARED_DIR}/specs ${DINO_SHARED_DIR}/specs/planned/dino_select.dino)
set_tests_properties(check_gate PROPERTIES LABELS frontend TIMEOUT 300)
