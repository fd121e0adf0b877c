/* The public header stands alone: nothing else included before it. */
#include "gpupv-prep.h"

int
main(void)
{
	struct gp_image_info info = { 0 };

	return (int)info.virtual_size + (gp_version() ? 0 : 1);
}
