module github.com/strata-io/strata

go 1.26.0

require github.com/twmb/franz-go/pkg/kmsg v1.15.0

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/cobra v1.10.2 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
	github.com/twmb/franz-go/pkg/kadm v1.19.0 // indirect
)

require (
	github.com/klauspost/compress v1.20.3
	github.com/pierrec/lz4/v4 v4.1.33
	github.com/twmb/franz-go v1.22.2
	golang.org/x/sys v0.49.0
)
