// Command etcd is etcd's own server (go.etcd.io/etcd/server/v3/etcdmain), at the version
// Kubernetes v1.34.2 pins (v3.6.4): newer than Debian's 3.4, whose missing watch-progress
// requests keep kube-apiserver from serving consistent lists from its watch cache.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
