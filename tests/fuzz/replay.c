/*
 * Corpus replay for `make check`: runs LLVMFuzzerTestOneInput over every
 * regular file in the directory given, so every fuzz target is exercised
 * (under the sanitizers too) without clang's libFuzzer.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
main(int argc, char **argv)
{
	DIR		*d;
	struct dirent	*e;
	char		 path[4096];
	struct stat	 st;
	FILE		*f;
	uint8_t		*buf;
	int		 n = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: replay DIR\n");
		return 2;
	}
	if ((d = opendir(argv[1])) == NULL) {
		printf("replay: %s: no corpus, 0 inputs\n", argv[1]);
		return 0;
	}
	while ((e = readdir(d)) != NULL) {
		snprintf(path, sizeof(path), "%s/%s", argv[1], e->d_name);
		if (stat(path, &st) == -1 || !S_ISREG(st.st_mode))
			continue;
		if ((f = fopen(path, "rb")) == NULL)
			continue;
		buf = malloc((size_t)st.st_size + 1);
		if (buf != NULL && fread(buf, 1, (size_t)st.st_size, f) ==
		    (size_t)st.st_size) {
			LLVMFuzzerTestOneInput(buf, (size_t)st.st_size);
			n++;
		}
		free(buf);
		fclose(f);
	}
	closedir(d);
	printf("replay: %s: %d inputs\n", argv[1], n);
	return 0;
}
