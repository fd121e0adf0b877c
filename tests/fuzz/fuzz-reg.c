/* fuzz-reg.c - libFuzzer harness for the .reg reader (reg.c), with the
 * DriverStore rewrite on. */
#include <config.h>

#include <stdint.h>

#include "reg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reg_file f;

	if (reg_parse("fuzz.reg", data, size, true, &f) == 0)
		reg_file_free(&f);
	gp_error_clear();
	return 0;
}
