# Turns a text file into a C string constant: cmake -DIN=file -DOUT=file.inc -DNAME=symbol -P embed.cmake
# With -DPASTE=dir, each line `#include "F.def"` of the file whose F.def is in dir is replaced by
# that file's text, so the string stands alone (the preludes and compiler/activations.def).
file(READ "${IN}" text)
if(PASTE)
  string(REGEX MATCHALL "#include \"[A-Za-z0-9_]+\\.def\"" incs "${text}")
  foreach(inc IN LISTS incs)
    string(REGEX REPLACE "#include \"(.*)\"" "\\1" f "${inc}")
    file(READ "${PASTE}/${f}" body)
    string(REPLACE "${inc}" "/* ---- ${f}, pasted */\n${body}/* ---- end of ${f} */" text "${text}")
  endforeach()
endif()
string(REPLACE "\\" "\\\\" text "${text}")
string(REPLACE "\"" "\\\"" text "${text}")
string(REPLACE "\n" "\\n\"\n\"" text "${text}")
file(WRITE "${OUT}" "/* generated from ${IN} by cmake/embed.cmake */\nstatic const char ${NAME}[] =\n\"${text}\";\n")
