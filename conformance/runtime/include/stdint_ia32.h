/* csmith's random_inc.h includes this under -DSTANDALONE; Debian's csmith package does not
 * ship it. On this ILP32 target the toolchain's own headers give the same types. */
#include <limits.h>
#include <stdint.h>
