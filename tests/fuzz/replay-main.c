/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Standalone main() for the fuzz targets: replays the files named on the command line through
 * LLVMFuzzerTestOneInput(), so `make check` runs each corpus without libFuzzer. */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	int n = 0;

	for (int i = 1; i < argc; i++) {
		unsigned char *buf;
		size_t len;

		if (util_read_file(argv[i], 1 << 20, &buf, &len) < 0) {
			fprintf(stderr, "cannot read %s\n", argv[i]);
			return 1;
		}
		LLVMFuzzerTestOneInput(buf, len);
		free(buf);
		n++;
	}
	printf("replayed %d inputs\n", n);
	return n ? 0 : 1;
}
