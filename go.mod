module github.com/spiffe-aws-bridge/spiffe-aws-bridge

go 1.26.0
