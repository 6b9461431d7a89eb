//go:build tools

// Pins the command-line tools deploy-check.sh builds (go.mod/go.sum hold their exact versions and hashes).
package main

import (
	_ "github.com/yannh/kubeconform/cmd/kubeconform"
	_ "sigs.k8s.io/kustomize/kustomize/v5"
)
