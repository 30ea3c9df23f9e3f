# cmake -DIN=FILE -DOUT=FILE.c -DNAME=SYMBOL -P embed.cmake: FILE's bytes as
# `const unsigned char SYMBOL[]` and `const size_t SYMBOL_len` in FILE.c
# (C17 has no #embed).
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "/* generated from ${IN} by cmake/embed.cmake */\n#include <stddef.h>\n"
  "const unsigned char ${NAME}[] = {${bytes}};\n"
  "const size_t ${NAME}_len = sizeof(${NAME});\n")
