package scenarios

import "testing"

func TestCatalogueValidates(t *testing.T) {
	for _, n := range Catalogue() {
		s, err := Read(n)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if err := s.Validate(BackendLocal); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}
