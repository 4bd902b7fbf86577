/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Standalone main() for the fuzz targets: replays the files named on the command line through
 * LLVMFuzzerTestOneInput(), so `make check` runs each corpus without libFuzzer. It prints TAP:
 * the plan first, so that a crash shows as the inputs missing after the last "ok". */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	if (argc < 2) {
		printf("Bail out! no inputs to replay\n");
		return 1;
	}
	printf("1..%d\n", argc - 1);
	fflush(stdout);
	for (int i = 1; i < argc; i++) {
		unsigned char *buf;
		size_t len;

		if (util_read_file(argv[i], 1 << 20, &buf, &len) < 0) {
			printf("Bail out! cannot read %s\n", argv[i]);
			return 1;
		}
		LLVMFuzzerTestOneInput(buf, len);
		free(buf);
		printf("ok %d - %s\n", i, argv[i]);
		fflush(stdout);
	}
	return 0;
}
