# cmake -DEXE=path/to/dino-gen-poisson -P check_badargs.cmake
# Every argument list below must make the program exit with status exactly 1 and print a message
# on stderr; --help must exit 0.
if(NOT EXE)
  message(FATAL_ERROR "pass -DEXE=<dino-gen-poisson>")
endif()

set(cases
  "--n|0"
  "--n|-5"
  "--n|abc"
  "--n"
  "--kl|0"
  "--sensors|0"
  "--grid|1"
  "--grid|100000"
  "--seed|x"
  "--reaction|-1"
  "--bogus"
  "--grid|3|--kl|26"
  "--sensors|9|--grid|5|--kl|4"
  "--out|/dev/null/dino-gen-poisson|--n|1|--grid|5|--kl|2|--sensors|1|-q")

foreach(c IN LISTS cases)
  # One case per list element, its arguments separated by '|'.
  string(REPLACE "|" " " shown "${c}")
  string(REPLACE "|" ";" args "${c}")
  execute_process(COMMAND ${EXE} ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(STRIP "${err}" err)
  if(NOT rc STREQUAL "1")
    message(SEND_ERROR "'${shown}': exit status '${rc}', want 1")
  elseif(err STREQUAL "")
    message(SEND_ERROR "'${shown}': no message on stderr")
  else()
    string(REGEX REPLACE "\n.*" "" first "${err}")
    message(STATUS "ok (status 1): ${shown}  ->  ${first}")
  endif()
endforeach()

execute_process(COMMAND ${EXE} --help RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc STREQUAL "0" OR NOT out MATCHES "usage:")
  message(SEND_ERROR "--help: exit status '${rc}', want 0 and a usage text")
endif()
