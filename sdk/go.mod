module github.com/flowstate/flowstate/sdk

go 1.24

require github.com/flowstate/flowstate/abi v0.0.0

replace github.com/flowstate/flowstate/abi => ../abi
