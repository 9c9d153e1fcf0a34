package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
	"unsafe"
)

// renameWatch times, with inotify, each rename of a file into place in a set of directories (the bridge
// writes a temporary file and renames it over the credentials file): the kernel reports each rename as it
// happens, so measuring costs no CPU that the daemon under test could have used, as polling 1,000 files
// every few milliseconds did.
type renameWatch struct {
	f      *os.File
	byWD   map[int32]int
	base   string
	events chan renamed
}

type renamed struct {
	i  int
	at time.Time
}

// watchRenames watches each file's directory for renames onto the file's name; all files share one base
// name, one per directory.
func watchRenames(files []string) (*renameWatch, error) {
	if len(files) == 0 {
		return nil, errors.New("no files to watch")
	}
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	w := &renameWatch{f: os.NewFile(uintptr(fd), "inotify"), byWD: map[int32]int{}, base: filepath.Base(files[0]),
		events: make(chan renamed, 2*len(files))}
	for i, f := range files {
		if filepath.Base(f) != w.base {
			w.f.Close()
			return nil, fmt.Errorf("%s: every watched file must be named %s", f, w.base)
		}
		wd, err := syscall.InotifyAddWatch(fd, filepath.Dir(f), syscall.IN_MOVED_TO)
		if err != nil {
			w.f.Close()
			return nil, fmt.Errorf("inotify watch %s: %w (fs.inotify.max_user_watches?)", filepath.Dir(f), err)
		}
		w.byWD[int32(wd)] = i
	}
	go w.read()
	return w, nil
}

func (w *renameWatch) read() {
	buf := make([]byte, 64*1024)
	for {
		n, err := w.f.Read(buf)
		at := time.Now()
		if err != nil {
			close(w.events)
			return
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
			off += syscall.SizeofInotifyEvent + int(ev.Len)
			for len(name) > 0 && name[len(name)-1] == 0 {
				name = name[:len(name)-1]
			}
			if i, ok := w.byWD[ev.Wd]; ok && ev.Mask&syscall.IN_MOVED_TO != 0 && string(name) == w.base {
				w.events <- renamed{i, at}
			}
		}
	}
}

// wait returns when every file was renamed into place at least once, with the time of each one's first
// rename.
func (w *renameWatch) wait(n int, timeout time.Duration) ([]time.Time, error) {
	at := make([]time.Time, n)
	left := n
	deadline := time.After(timeout)
	for left > 0 {
		select {
		case ev, ok := <-w.events:
			if !ok {
				return nil, errors.New("inotify stopped")
			}
			if at[ev.i].IsZero() {
				at[ev.i] = ev.at
				left--
			}
		case <-deadline:
			return nil, fmt.Errorf("%d of %d files not replaced within %s", left, n, timeout)
		}
	}
	return at, nil
}

func (w *renameWatch) close() { w.f.Close() }
