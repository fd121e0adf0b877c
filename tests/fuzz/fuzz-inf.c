/* fuzz-inf.c - libFuzzer harness for the INF reader (inf.c): parse,
 * DriverVer, CopyToVm in all sections and in one, the service section. */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>

#include "inf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct inf inf;
	struct copytovm *cv;
	struct inf_service svc;
	size_t n;
	char *dv, *w;

	if (inf_parse("fuzz.inf", data, size, &inf) == 0) {
		if (inf_copytovm(&inf, NULL, &cv, &n) == 0)
			copytovm_free(cv, n);
		if (inf.n && inf_copytovm(&inf, inf.s[0].name, &cv, &n) == 0)
			copytovm_free(cv, n);
		if (inf_service(&inf, "nvlddmkm", NULL, &svc) == 1)
			inf_service_free(&svc);
		inf_free(&inf);
	}
	dv = inf_driver_ver_mem("fuzz.inf", data, size);
	w = inf_wddm_hint(dv);
	free(dv);
	free(w);
	gp_error_clear();
	gp_warnings_clear();
	return 0;
}
