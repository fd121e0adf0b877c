/* fuzz-json.c - libFuzzer harness for the JSON we read from outside: a
 * host bundle's gpupv-bundle.json and the manifest found in an image. */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pkg_set set = { 0 };
	struct manifest m;

	bundle_parse(&set.bundle, (const char *)data, size, "fuzz",
	    "/nonexistent");
	pkg_set_free(&set);
	if (manifest_parse((const char *)data, size, &m) == 0) {
		size_t len;
		char *t = manifest_format(&m, &len);

		free(t);
		manifest_free(&m);
	}
	gp_error_clear();
	return 0;
}
