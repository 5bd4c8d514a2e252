// Small valid KKBox files: the fuzz target's fixed folder and the seeds of its corpus (make_seeds).
#pragma once
#include <array>

namespace musicrec::fuzz {

struct KkboxFile {
  const char* name;
  const char* valid;
};
inline const std::array<KkboxFile, 5> kKkboxFiles{{
    {"train.csv",
     "msno,song_id,source_system_tab,source_screen_name,source_type,target\n"
     "m1,s1,explore,Explore,online-playlist,1\nm2,s2,my library,Local playlist more,local-library,0\n"
     "m1,s2,discover,,song-based-playlist,1\n"},
    {"test.csv",
     "id,msno,song_id,source_system_tab,source_screen_name,source_type\n0,m1,s3,my library,Local playlist more,local-library\n"},
    {"members.csv",
     "msno,city,bd,gender,registered_via,registration_init_time,expiration_date\n"
     "m1,1,0,,7,20110820,20170920\nm2,13,24,female,9,20150628,20170622\n"},
    {"songs.csv",
     "song_id,song_length,genre_ids,artist_name,composer,lyricist,language\n"
     "s1,247640,465,Artist A,Composer,Lyricist,3\ns2,197328,444|1259,\"Artist, B\",,,31\n"},
    {"song_extra_info.csv", "song_id,name,isrc\ns1,Name One,TWUM71200043\ns2,Name Two,\n"},
}};

}  // namespace musicrec::fuzz
