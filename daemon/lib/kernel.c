// SPDX-License-Identifier: GPL-2.0
/* The running kernel's release, for choices that depend on it (collector.h). Plain C. */
#include <stdbool.h>
#include <stdio.h>

#include "collector.h"

bool ipiv_kernel_at_least(const char *release, int major, int minor)
{
	int maj, min;

	if (!release || sscanf(release, "%d.%d", &maj, &min) != 2)
		return false;
	return maj > major || (maj == major && min >= minor);
}
