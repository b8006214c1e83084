package detector

// ProgressEvery lets tests report Scan progress faster than once a second.
var ProgressEvery = &progressEvery
