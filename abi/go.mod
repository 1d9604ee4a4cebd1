module github.com/flowstate/flowstate/abi

go 1.24
