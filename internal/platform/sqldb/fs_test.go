package sqldb_test

import (
	"io/fs"
	"testing/fstest"
)

// fstestMap builds an in-memory FS from path → content.
type fstestMap map[string]string

func (m fstestMap) Open(name string) (fs.File, error) {
	mfs := fstest.MapFS{}
	for p, c := range m {
		mfs[p] = &fstest.MapFile{Data: []byte(c)}
	}
	return mfs.Open(name)
}
