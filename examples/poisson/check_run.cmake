# cmake -DEXE=path/to/dino-gen-poisson -DOUT=dir -P check_run.cmake
# Runs the command line on a small problem and checks that the files exist with the right sizes
# (header + 8 bytes per value; the headers themselves are checked byte for byte by --selftest).
if(NOT EXE OR NOT OUT)
  message(FATAL_ERROR "pass -DEXE=<dino-gen-poisson> -DOUT=<dir>")
endif()
file(REMOVE_RECURSE "${OUT}")
execute_process(COMMAND ${EXE} --out ${OUT}/sub --n 10 --kl 6 --sensors 2 --grid 9 --seed 3
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc STREQUAL "0")
  message(FATAL_ERROR "run failed with status '${rc}': ${err}")
endif()
if(NOT err MATCHES "10/10 rows")
  message(FATAL_ERROR "no progress on stderr: ${err}")
endif()
# N=10, K=6, dim q=4: 128-byte headers.
foreach(pair "m_data.npy;608" "q_data.npy;448" "J_data.npy;2048")
  list(GET pair 0 name)
  list(GET pair 1 want)
  file(SIZE "${OUT}/sub/${name}" size)
  if(NOT size EQUAL want)
    message(FATAL_ERROR "${name}: ${size} bytes, want ${want}")
  endif()
  file(READ "${OUT}/sub/${name}" head LIMIT 8 HEX)
  if(NOT head STREQUAL "934e554d50590100")
    message(FATAL_ERROR "${name}: bad magic/version ${head}")
  endif()
endforeach()
file(STRINGS "${OUT}/sub/info.txt" rows REGEX "^rows = 10$")
if(NOT rows)
  message(FATAL_ERROR "info.txt lacks 'rows = 10'")
endif()
# -q: nothing on stderr.
execute_process(COMMAND ${EXE} --out ${OUT}/q --n 2 --kl 3 --sensors 1 --grid 5 -q
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc STREQUAL "0" OR NOT err STREQUAL "")
  message(FATAL_ERROR "-q run: status '${rc}', stderr '${err}'")
endif()
file(REMOVE_RECURSE "${OUT}")
