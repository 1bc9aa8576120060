// liblz4's block API (Debian: liblz4-dev installs it as <lz4.h>): LZ4_compress_default,
// LZ4_decompress_safe, LZ4_compressBound for the segment TEXT section.
#include <lz4.h>
