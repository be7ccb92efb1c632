// vcsim-vmlab: govmomi's vCenter simulator on 127.0.0.1, for vmlab's tests.
//
// Built offline from Debian's golang-github-vmware-govmomi-dev by build.sh (GOPATH mode),
// with the fixes in *.patch. The model: datacenter DC0 with a standalone host DC0_H0 (and
// its VM DC0_H0_VM0), cluster DC0_C0 with host DC0_C0_H0, datastore LocalDS_0 and the port
// group "VM Network". It writes its URL (with the user and password) to -url-file once it
// listens, and runs until it is killed (SIGTERM removes its datastore files).
//
// Guest addresses: the simulator runs no guests, so guest.net only lists the NICs. A client
// gives them addresses through the ordinary vSphere API: CustomizeVM_Task with a
// CustomizationFixedIp per NIC (applied at the next power-on, every NIC), or a ReconfigVM
// extraConfig "SET.guest.ipAddress" (first NIC only, at once).
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	listen := flag.String("l", "127.0.0.1:0", "address to listen on")
	urlFile := flag.String("url-file", "", "write the service URL to this file")
	user := flag.String("username", "vmlab", "user name")
	password := flag.String("password", "vmlab-sim-pass", "password")
	flag.Parse()

	model := simulator.VPX()
	model.Datacenter = 1
	model.Cluster = 1
	model.ClusterHost = 1
	model.Host = 1
	model.Machine = 1
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	model.Service.Listen = &url.URL{Scheme: "https", Host: *listen, User: url.UserPassword(*user, *password)}
	tlsConfig, err := selfSigned()
	if err != nil {
		log.Fatal(err)
	}
	model.Service.TLS = tlsConfig
	server := model.Service.NewServer()
	defer server.Close()
	defer model.Remove()

	if *urlFile != "" {
		tmp := *urlFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(server.URL.String()+"\n"), 0600); err != nil {
			log.Fatal(err)
		}
		if err := os.Rename(tmp, *urlFile); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(server.URL.String())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}

// selfSigned makes a throw-away certificate for 127.0.0.1 (clients connect with
// certificate checks off, as vmlab's profiles say with `insecure: true`).
func selfSigned() (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	template := x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "vcsim-vmlab"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, &template, &template, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, nil
}
