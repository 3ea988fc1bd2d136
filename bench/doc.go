// Package bench holds Hookstream's end-to-end benchmarks: the real router and
// deliverer on a test cluster (kfake by default, real Apache Kafka with
// HOOKSTREAM_TEST_BROKER=kafka), delivering to local receivers that verify
// every signature.
//
// Every iteration of a benchmark here is one full run (set-up, a backlog of
// events, delivery of all of it), so run them with -benchtime 1x:
//
//	go test -run '^$' -bench BenchmarkIsolation -benchtime 1x -timeout 30m ./bench/
//	HOOKSTREAM_TEST_BROKER=kafka go test -run '^$' -bench BenchmarkIsolation -benchtime 1x -timeout 30m ./bench/
//
// Benchmark flags go after the package, in -name=value form (go test ...
// ./bench/ -isolation.rounds=5). One run of a scenario varies by about ±10 %
// on a busy 2-core machine, so BenchmarkIsolation repeats the scenarios
// (-isolation.rounds, default 3) in rotated order and compares medians. The
// figures are printed and written to bench/results/.
package bench
