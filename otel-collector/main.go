// Command otelcol is a minimal OpenTelemetry Collector distribution holding exactly the components that
// config.yaml (the single collector), agent.yaml and gateway.yaml (the agent/gateway tier) use. It has the
// shape the OpenTelemetry Collector Builder (ocb) generates, so it can be replaced by an ocb build at any time.
// Build it with build.sh; compose uses the upstream contrib image of the same release.
package main

import (
	"log"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"
)

// version is the core collector release this distribution is built from; build.sh may override it.
var version = "0.161.0"

func main() {
	info := component.BuildInfo{
		Command:     "otelcol-image2model",
		Description: "Minimal OpenTelemetry Collector distribution for the image2model stack",
		Version:     version,
	}

	set := otelcol.CollectorSettings{
		BuildInfo: info,
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
					yamlprovider.NewFactory(),
				},
				DefaultScheme: "env",
			},
		},
	}

	if err := otelcol.NewCommand(set).Execute(); err != nil {
		log.Fatal(err)
	}
}
