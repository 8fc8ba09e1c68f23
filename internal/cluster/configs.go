package cluster

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/strata-io/strata/internal/cluster/records"
)

// ErrInvalidResource marks a config change for a resource the metadata log
// does not hold configs of this way (topics go through AlterConfigs).
var ErrInvalidResource = errors.New("cluster: invalid config resource")

// AlterResourceConfigs sets (non-nil) or removes (nil) configs of a
// resource other than a topic: a broker's dynamic configs (Name its node
// id), the cluster-wide default broker configs (a broker resource with an
// empty Name) or a consumer group's configs, one ConfigRecord per key, as
// Kafka's ConfigurationControlManager writes them. The caller validates
// names and values; the image keeps them in OtherConfigs.
func (s *Store) AlterResourceConfigs(res ConfigResource, changes map[string]*string) (*Image, error) {
	if res.Type == records.ResourceTopic {
		return nil, fmt.Errorf("%w: topic %q: use AlterConfigs", ErrInvalidResource, res.Name)
	}
	return s.change(func(im *Image) ([]records.Record, error) {
		cur := im.OtherConfigs[res]
		var out []records.Record
		for _, k := range slices.Sorted(maps.Keys(changes)) {
			v := changes[k]
			// Deleting what is not set writes nothing.
			if old, ok := cur[k]; v == nil && !ok || v != nil && ok && old == *v {
				continue
			}
			out = append(out, &records.Config{ResourceType: res.Type, ResourceName: res.Name, Name: k, Value: v})
		}
		return out, nil
	})
}

// ResourceConfigs returns the configs the image holds for res (nil when
// none). The map must not be modified.
func (im *Image) ResourceConfigs(res ConfigResource) map[string]string {
	return im.OtherConfigs[res]
}
