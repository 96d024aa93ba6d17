#ifndef ISHTAR_CJEMALLOC_SHIM_H
#define ISHTAR_CJEMALLOC_SHIM_H

#include <stddef.h>

// Only jemalloc's control interface. <jemalloc/jemalloc.h> would also redeclare malloc and
// free, which the C library module already declares; linking the library is what puts
// jemalloc in front of glibc's allocator for the whole process.
int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);

#endif
