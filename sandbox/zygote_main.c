/* tine-zygote: the zygote as a program of its own. tined forks and execs it
 * (sbx_zygote_start) instead of forking itself, so sandboxes are forked
 * from a small process: LuaJIT, jansson, libseccomp and the C library
 * mapped, none of tined's other libraries (TLS, HTTP, archives, YAML) and
 * none of its memory (configuration, tokens). A fork copies fewer page
 * tables and a sandbox shares fewer pages. Not meant to be run by hand. */
#include "sandbox_internal.h"

int main(int argc, char **argv)
{
    return sbx__zygote_program(argc, argv);
}
