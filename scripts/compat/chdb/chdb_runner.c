// chdb_runner runs SQL statements on ClickHouse embedded as a library
// (libchdb, from the chdb project: the server's engine without its network
// side). scripts/compat feeds it the statements costpipe sent to a real
// server, NUL-separated on stdin, and reads one framed answer per statement:
//
//	#N OK LEN\n   then LEN bytes of TabSeparated output and a newline
//	#N ERR LEN\n  then LEN bytes of error message and a newline
//
// Usage: chdb_runner DATA_DIR < statements
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// From chdb's C API (programs/local/chdb.h, Apache-2.0).
typedef struct chdb_connection_ { void *internal_data; } *chdb_connection;
typedef struct chdb_result_ { void *internal_data; } chdb_result;
chdb_connection *chdb_connect(int argc, char **argv);
void chdb_close_conn(chdb_connection *conn);
chdb_result *chdb_query(chdb_connection conn, const char *query, const char *format);
char *chdb_result_buffer(chdb_result *result);
size_t chdb_result_length(chdb_result *result);
const char *chdb_result_error(chdb_result *result);
void chdb_destroy_query_result(chdb_result *result);

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: %s DATA_DIR < NUL-separated statements\n", argv[0]);
		return 2;
	}
	size_t cap = 1 << 20, len = 0;
	char *in = malloc(cap);
	for (size_t n; (n = fread(in + len, 1, cap - len - 1, stdin)) > 0;) {
		len += n;
		if (cap - len < 2) {
			cap *= 2;
			in = realloc(in, cap);
		}
	}
	in[len] = 0;

	char path[4096];
	snprintf(path, sizeof path, "--path=%s", argv[1]);
	char *args[] = {"clickhouse", path};
	chdb_connection *conn = chdb_connect(2, args);
	if (!conn) {
		fprintf(stderr, "chdb_runner: cannot open an embedded ClickHouse in %s\n", argv[1]);
		return 1;
	}
	int n = 0;
	for (char *q = in; q < in + len; q += strlen(q) + 1) {
		chdb_result *r = chdb_query(*conn, q, "TabSeparated");
		const char *err = r ? chdb_result_error(r) : "no result";
		if (err) {
			printf("#%d ERR %zu\n%s\n", n, strlen(err), err);
		} else {
			size_t l = chdb_result_length(r);
			printf("#%d OK %zu\n", n, l);
			fwrite(chdb_result_buffer(r), 1, l, stdout);
			printf("\n");
		}
		if (r) chdb_destroy_query_result(r);
		n++;
	}
	chdb_close_conn(conn);
	return 0;
}
