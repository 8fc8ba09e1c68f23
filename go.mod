module github.com/strata-io/strata

go 1.26.0

require github.com/twmb/franz-go/pkg/kmsg v1.15.0

require (
	github.com/klauspost/compress v1.20.3
	github.com/pierrec/lz4/v4 v4.1.33
	github.com/twmb/franz-go v1.22.2
	golang.org/x/sys v0.49.0 // indirect
)
